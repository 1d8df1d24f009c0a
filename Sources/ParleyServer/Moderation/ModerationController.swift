import Fluent
import Vapor

/// Reports (`POST /v1/conversations/{id}/messages/{seq}/reports`), the moderators' queue and
/// decisions (`/v1/moderation/…`), and moderation policies (the site's and a conversation's).
struct ModerationController: RouteCollection {
    let chat: ChatDependencies
    let writes: WriteGate
    let clock: AppClock
    let serving: ModelServing
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        let signedIn = routes.grouped(authentication)
        signedIn.post("conversations", ":conversation_id", "messages", ":seq", "reports", use: report)
        signedIn.get("conversations", ":conversation_id", "moderation", use: conversationPolicy)
        signedIn.put("conversations", ":conversation_id", "moderation", use: setConversationPolicy)
        signedIn.delete("conversations", ":conversation_id", "moderation", use: clearConversationPolicy)
        let moderation = signedIn.grouped("moderation")
        moderation.get("queue", use: queue)
        moderation.post("messages", ":message_id", "decision", use: decide)
        moderation.get("policy", use: sitePolicy)
        moderation.put("policy", use: setSitePolicy)
        moderation.get("audit", use: audit)
    }

    private func context(_ request: Request) throws -> (ModerationService, ModerationService.Caller) {
        let principal = try request.principal()
        return (ModerationService(db: request.db, writes: writes, clock: clock, serving: serving),
                .init(userID: principal.userID, role: User.Role(rawValue: principal.role) ?? .user))
    }

    private func access(_ request: Request, _ caller: ModerationService.Caller) async throws -> ConversationService.Access {
        let id = try request.idParameter("conversation_id", orThrow: ConversationError.conversationNotFound)
        return try await chat.conversations(request.db).access(id, userID: caller.userID)
    }

    @Sendable
    func report(_ request: Request) async throws -> HTTPStatus {
        let (service, caller) = try context(request)
        let access = try await access(request, caller)
        guard let seq = request.parameters.get("seq").flatMap(Int.init) else { throw ConversationError.messageNotFound }
        let input = try request.decodeJSON(ReportRequest.self)
        return try await service.report(access, seq: seq, reason: input.reason, by: caller.userID) ? .created : .ok
    }

    @Sendable
    func queue(_ request: Request) async throws -> ModerationQueueDTO {
        let (service, caller) = try context(request)
        return try await service.queue(caller: caller)
    }

    @Sendable
    func decide(_ request: Request) async throws -> MessageDTO {
        let (service, caller) = try context(request)
        let id = try request.idParameter("message_id", orThrow: ModerationError.messageNotFound)
        let input = try request.decodeJSON(DecisionRequest.self)
        guard let action = ModerationService.Action(rawValue: input.action) else {
            throw ProblemError.validation(field: "action", code: "invalid", message: "must be approve or remove")
        }
        return try await service.decide(id, action, reason: input.reason, caller: caller)
    }

    @Sendable
    func sitePolicy(_ request: Request) async throws -> ModerationPolicy.Thresholds {
        let (service, caller) = try context(request)
        return try await service.sitePolicy(caller: caller)
    }

    @Sendable
    func setSitePolicy(_ request: Request) async throws -> ModerationPolicy.Thresholds {
        let (service, caller) = try context(request)
        let input = try request.decodeJSON(PolicyRequest.self)
        return try await service.setSitePolicy(.init(flagAt: input.flagAt, holdAt: input.holdAt, blockAt: input.blockAt), caller: caller)
    }

    @Sendable
    func conversationPolicy(_ request: Request) async throws -> ConversationPolicyDTO {
        let (service, caller) = try context(request)
        return try await service.conversationPolicy(try await access(request, caller), caller: caller)
    }

    @Sendable
    func setConversationPolicy(_ request: Request) async throws -> ConversationPolicyDTO {
        let (service, caller) = try context(request)
        let input = try request.decodeJSON(PolicyRequest.self)
        return try await service.setConversationPolicy(try await access(request, caller),
                                                       .init(flagAt: input.flagAt, holdAt: input.holdAt, blockAt: input.blockAt), caller: caller)
    }

    @Sendable
    func clearConversationPolicy(_ request: Request) async throws -> ConversationPolicyDTO {
        let (service, caller) = try context(request)
        return try await service.setConversationPolicy(try await access(request, caller), nil, caller: caller)
    }

    @Sendable
    func audit(_ request: Request) async throws -> Page<AuditLog.Entry> {
        let (_, caller) = try context(request)
        guard caller.role.moderates else { throw ModerationError.notAModerator }
        let limit = try request.pageLimit(default: 50, range: 1...200)
        let before = request.query[String.self, at: "cursor"].flatMap { ISO8601DateFormatter().date(from: $0) }
        let entries = try await AuditLog.entries(prefix: caller.role == .admin ? nil : "moderation.", before: before, limit: limit, on: request.db)
        return Page(items: entries, nextCursor: entries.count == limit ? entries.last.map { ISO8601DateFormatter().string(from: $0.createdAt) } : nil)
    }
}
