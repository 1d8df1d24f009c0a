import Fluent
import Vapor

/// `/v1/conversations` and `/v1/channels`.
struct ConversationController: RouteCollection {
    let chat: ChatDependencies
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        let signedIn = routes.grouped(authentication)
        signedIn.get("channels", use: channels)

        let conversations = signedIn.grouped("conversations")
        conversations.get(use: list)
        conversations.post(use: create)
        conversations.group(":conversation_id") { conversation in
            conversation.get(use: show)
            conversation.patch(use: update)
            conversation.delete(use: delete)
            conversation.post("join", use: join)
            conversation.post("leave", use: leave)
            conversation.put("read", use: markRead)
            conversation.put("membership", use: updateMembership)
            conversation.get("members", use: members)
            conversation.post("members", use: addMember)
            conversation.patch("members", ":user_id", use: changeRole)
            conversation.delete("members", ":user_id", use: removeMember)
        }
    }

    /// The caller, the service and the conversation named in the path (404 when invisible).
    private func access(_ request: Request) async throws -> (ConversationService, ConversationService.Access, Principal) {
        let principal = try request.principal()
        let service = chat.conversations(request.db)
        let id = try request.idParameter("conversation_id", orThrow: ConversationError.conversationNotFound)
        return (service, try await service.access(id, userID: principal.userID), principal)
    }

    @Sendable
    func list(_ request: Request) async throws -> Page<ConversationDTO> {
        let principal = try request.principal()
        let limit = try request.pageLimit(default: 50, range: 1...200)
        return try await chat.conversations(request.db).list(userID: principal.userID, cursor: request.query["cursor"], limit: limit)
    }

    @Sendable
    func create(_ request: Request) async throws -> Response {
        let principal = try request.principal()
        let input = try request.decodeJSON(CreateConversationRequest.self)
        let (dto, created) = try await chat.conversations(request.db).create(input, creatorID: principal.userID)
        let response = try await dto.encodeResponse(status: created ? .created : .ok, for: request)
        response.headers.replaceOrAdd(name: .location, value: "/v1/conversations/\(dto.id)")
        return response
    }

    @Sendable
    func show(_ request: Request) async throws -> Response {
        let (service, access, principal) = try await access(request)
        return try request.conditionalJSON(try await service.show(access, userID: principal.userID))
    }

    @Sendable
    func update(_ request: Request) async throws -> ConversationDTO {
        let (service, access, principal) = try await access(request)
        let patch = try request.decodeJSON(UpdateConversationRequest.self)
        return try await service.update(access, with: patch, by: principal.userID)
    }

    @Sendable
    func delete(_ request: Request) async throws -> HTTPStatus {
        let (service, access, _) = try await access(request)
        try await service.delete(access)
        return .noContent
    }

    @Sendable
    func channels(_ request: Request) async throws -> Page<ConversationDTO> {
        _ = try request.principal()
        let limit = try request.pageLimit(default: 50, range: 1...100)
        return try await chat.conversations(request.db).channels(query: request.query["q"], cursor: request.query["cursor"], limit: limit)
    }

    @Sendable
    func join(_ request: Request) async throws -> Response {
        let (service, access, principal) = try await access(request)
        let (dto, joined) = try await service.join(access, userID: principal.userID)
        return try await dto.encodeResponse(status: joined ? .created : .ok, for: request)
    }

    @Sendable
    func leave(_ request: Request) async throws -> HTTPStatus {
        let (service, access, principal) = try await access(request)
        try await service.leave(access, userID: principal.userID)
        return .noContent
    }

    @Sendable
    func markRead(_ request: Request) async throws -> ReadMarkerDTO {
        let (service, access, principal) = try await access(request)
        return try await service.markRead(access, try request.decodeJSON(ReadMarkerRequest.self), userID: principal.userID)
    }

    @Sendable
    func updateMembership(_ request: Request) async throws -> MembershipDTO {
        let (service, access, principal) = try await access(request)
        return try await service.updateMembership(access, try request.decodeJSON(MembershipSettingsRequest.self), userID: principal.userID)
    }

    @Sendable
    func members(_ request: Request) async throws -> Page<MemberDTO> {
        let (service, access, _) = try await access(request)
        let limit = try request.pageLimit(default: 100, range: 1...200)
        return try await service.members(access, cursor: request.query["cursor"], limit: limit)
    }

    @Sendable
    func addMember(_ request: Request) async throws -> Response {
        let (service, access, _) = try await access(request)
        let (member, added) = try await service.addMember(access, try request.decodeJSON(AddMemberRequest.self))
        return try await member.encodeResponse(status: added ? .created : .ok, for: request)
    }

    @Sendable
    func changeRole(_ request: Request) async throws -> MemberDTO {
        let (service, access, _) = try await access(request)
        return try await service.changeRole(access, userID: try request.idParameter("user_id", orThrow: ConversationError.memberNotFound),
                                            try request.decodeJSON(ChangeRoleRequest.self))
    }

    @Sendable
    func removeMember(_ request: Request) async throws -> HTTPStatus {
        let (service, access, principal) = try await access(request)
        try await service.removeMember(access, userID: try request.idParameter("user_id", orThrow: ConversationError.memberNotFound), by: principal.userID)
        return .noContent
    }
}
