import Fluent
import Vapor

/// `/v1/notifications`: my inbox, its unread count, and marking it read.
struct NotificationController: RouteCollection {
    let authentication: AuthenticationMiddleware
    let writes: WriteGate
    let clock: AppClock

    func boot(routes: any RoutesBuilder) throws {
        let notifications = routes.grouped(authentication).grouped("notifications")
        notifications.get(use: list)
        notifications.post("read", use: markRead)
    }

    struct Page: Content {
        var items: [NotificationDTO]
        var unreadCount: Int
        var nextCursor: String?

        enum CodingKeys: String, CodingKey {
            case items
            case unreadCount = "unread_count"
            case nextCursor = "next_cursor"
        }
    }

    /// Newest first; `unread=true` for the unread ones only.
    @Sendable
    func list(_ request: Request) async throws -> Page {
        let principal = try request.principal()
        let limit = try request.pageLimit(default: 50, range: 1...200)
        var cursor: (Date, UUID)?
        if let raw = request.query[String.self, at: "cursor"] {
            guard let decoded = ActivityCursor.decode(raw) else {
                throw ValidationError(field: "cursor", code: "invalid", message: "is not a cursor this server issued")
            }
            cursor = decoded
        }
        var unreadOnly = false
        if let raw = request.query[String.self, at: "unread"] {
            guard let value = Bool(raw) else { throw ValidationError(field: "unread", code: "invalid_type", message: "must be true or false") }
            unreadOnly = value
        }
        let rows = try await UserNotification.page(of: principal.userID, unreadOnly: unreadOnly, before: cursor, limit: limit + 1,
                                                   on: request.db)
        let page = Array(rows.prefix(limit))
        let unread = try await UserNotification.unreadCount(of: principal.userID, on: request.db)
        let next = rows.count > limit ? page.last.map { ActivityCursor.encode($0.createdAt, $0.id) } : nil
        return Page(items: page.map(NotificationDTO.init), unreadCount: unread, nextCursor: next)
    }

    struct ReadRequest: Decodable {
        var ids: [String]?
        var all: Bool?

        enum CodingKeys: String, CodingKey, CaseIterable { case ids, all }

        init(from decoder: any Decoder) throws {
            try decoder.refuseUnknownKeys(allowed: CodingKeys.self)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            ids = try container.decodeIfPresent([String].self, forKey: .ids)
            all = try container.decodeIfPresent(Bool.self, forKey: .all)
        }
    }

    struct ReadResponse: Content {
        var unreadCount: Int
        enum CodingKeys: String, CodingKey { case unreadCount = "unread_count" }
    }

    /// `{"ids":[…]}` marks those read, `{"all":true}` every one.
    @Sendable
    func markRead(_ request: Request) async throws -> ReadResponse {
        let principal = try request.principal()
        let input = try request.decodeJSON(ReadRequest.self)
        let selection: UserNotification.Selection
        switch (input.ids, input.all) {
        case (let ids?, nil):
            let parsed = ids.compactMap(UUID.init(wire:))
            guard parsed.count == ids.count, ids.count <= 500 else {
                throw ValidationError(field: "ids", code: "invalid", message: "must be at most 500 notification ids")
            }
            selection = .ids(parsed)
        case (nil, true?):
            selection = .all
        default:
            throw ValidationError(field: "ids", code: "required", message: "give either ids or \"all\": true")
        }
        let userID = principal.userID, now = clock.now()
        try await request.db.writeTransaction(writes) { tx, outbox in
            try await Notifier.markRead(selection, of: userID, at: now, tx: tx, outbox: outbox)
        }
        return ReadResponse(unreadCount: try await UserNotification.unreadCount(of: userID, on: request.db))
    }
}
