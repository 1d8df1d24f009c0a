import Fluent
import Vapor

/// `/v1/conversations/{id}/messages…`: history, sending, editing, deleting, threads, reactions.
struct MessageController: RouteCollection {
    let chat: ChatDependencies
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        let messages = routes.grouped(authentication).grouped("conversations", ":conversation_id", "messages")
        messages.get(use: page)
        messages.post(use: send)
        messages.group(":seq") { message in
            message.get(use: show)
            message.put(use: replace)
            message.patch(use: patch)
            message.delete(use: delete)
            message.get("replies", use: replies)
            message.put("reactions", ":emoji", use: react)
            message.delete("reactions", ":emoji", use: unreact)
        }
    }

    private func access(_ request: Request) async throws -> (ConversationService.Access, Principal) {
        let principal = try request.principal()
        let id = try request.idParameter("conversation_id", orThrow: ConversationError.conversationNotFound)
        let access = try await chat.conversations(request.db).access(id, userID: principal.userID)
        return (access, principal)
    }

    @Sendable
    func page(_ request: Request) async throws -> Response {
        let (access, principal) = try await access(request)
        let limit = try request.pageLimit(default: MessageService.defaultPageSize, range: MessageService.pageLimit)
        let before = try request.intQuery("before", minimum: 1)
        let after = try request.intQuery("after", minimum: 0)
        if before != nil, after != nil {
            throw ProblemError.validation(field: "before", code: "conflict", message: "give before or after, not both")
        }
        let direction: MessageService.Direction = before.map { .before($0) } ?? after.map { .after($0) } ?? .latest
        let page = try await chat.messages(request.db).page(access, direction: direction, limit: limit, viewer: principal.userID)
        return try request.conditionalJSON(page)
    }

    @Sendable
    func send(_ request: Request) async throws -> Response {
        let (access, principal) = try await access(request)
        let input = try request.decodeJSON(SendMessageRequest.self)
        let sent = try await chat.messages(request.db).send(access, input, authorID: principal.userID,
                                                            idempotencyKey: request.headers.first(name: "Idempotency-Key"))
        let response = try await sent.message.encodeResponse(status: .created, for: request)
        response.headers.replaceOrAdd(name: .location, value: "/v1/conversations/\(sent.message.conversationID)/messages/\(sent.message.seq)")
        if sent.replayed { response.headers.replaceOrAdd(name: "Idempotent-Replayed", value: "true") }
        return response
    }

    @Sendable
    func show(_ request: Request) async throws -> Response {
        let (access, principal) = try await access(request)
        let (message, dto) = try await chat.messages(request.db).message(
            access, seq: try request.seqParameter("seq", orThrow: ConversationError.messageNotFound), viewer: principal.userID)
        return try request.conditionalJSON(dto, etag: message.etag(representation:))
    }

    @Sendable
    func replace(_ request: Request) async throws -> Response {
        try await edit(request, mode: .replace)
    }

    @Sendable
    func patch(_ request: Request) async throws -> Response {
        try await edit(request, mode: .mergePatch)
    }

    private func edit(_ request: Request, mode: MessageService.EditMode) async throws -> Response {
        let (access, principal) = try await access(request)
        let input = try request.decodeJSON(EditMessageRequest.self)
        let service = chat.messages(request.db)
        let message = try await service.edit(access, seq: try request.seqParameter("seq", orThrow: ConversationError.messageNotFound), input, mode: mode,
                                             ifMatch: request.headers.first(name: .ifMatch), editorID: principal.userID)
        let (_, dto) = try await service.message(access, seq: message.seq, viewer: principal.userID)
        return try request.conditionalJSON(dto, etag: message.etag(representation:))
    }

    @Sendable
    func delete(_ request: Request) async throws -> HTTPStatus {
        let (access, principal) = try await access(request)
        try await chat.messages(request.db).delete(access, seq: try request.seqParameter("seq", orThrow: ConversationError.messageNotFound),
                                                   ifMatch: request.headers.first(name: .ifMatch), by: principal.userID)
        return .noContent
    }

    @Sendable
    func replies(_ request: Request) async throws -> MessagePage {
        let (access, principal) = try await access(request)
        let limit = try request.pageLimit(default: MessageService.defaultPageSize, range: MessageService.pageLimit)
        return try await chat.messages(request.db).replies(access, seq: try request.seqParameter("seq", orThrow: ConversationError.messageNotFound),
                                                           after: try request.intQuery("after", minimum: 0),
                                                           limit: limit, viewer: principal.userID)
    }

    @Sendable
    func react(_ request: Request) async throws -> HTTPStatus {
        let (access, principal) = try await access(request)
        let added = try await chat.messages(request.db).react(access, seq: try request.seqParameter("seq", orThrow: ConversationError.messageNotFound),
                                                              emoji: request.parameters.get("emoji")?.removingPercentEncoding,
                                                              userID: principal.userID)
        return added ? .created : .ok
    }

    @Sendable
    func unreact(_ request: Request) async throws -> HTTPStatus {
        let (access, principal) = try await access(request)
        try await chat.messages(request.db).unreact(access, seq: try request.seqParameter("seq", orThrow: ConversationError.messageNotFound),
                                                    emoji: request.parameters.get("emoji")?.removingPercentEncoding,
                                                    userID: principal.userID)
        return .noContent
    }
}
