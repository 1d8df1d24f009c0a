import Fluent
import SQLKit
import Vapor

/// A one-time ticket for opening an event stream from a client that cannot set headers on a
/// WebSocket (browsers). Valid 30 seconds, usable once, stored as a digest so any node can
/// redeem it. A long-lived token never goes into a URL.
final class EventTicket: Model, @unchecked Sendable {
    static let schema = "event_tickets"
    static let lifetime: TimeInterval = 30

    // identity
    @ID(key: .id) var id: UUID?
    @Field(key: "token_hash") var tokenHash: String

    // data
    @Parent(key: "user_id") var user: User
    @Parent(key: "session_id") var session: Session
    @Field(key: "expires_at") var expiresAt: Date
    @OptionalField(key: "used_at") var usedAt: Date?

    init() {}

    init(tokenHash: String, userID: UUID, sessionID: UUID, expiresAt: Date) {
        self.tokenHash = tokenHash
        self.$user.id = userID
        self.$session.id = sessionID
        self.expiresAt = expiresAt
    }
}

struct CreateEventTickets: AsyncMigration {
    var name: String { "2026-11-25-CreateEventTickets" }

    func prepare(on database: any Database) async throws {
        try await database.schema(EventTicket.schema)
            .id()
            .field("token_hash", .string, .required)
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("session_id", .uuid, .required, .references(Session.schema, .id, onDelete: .cascade))
            .field("expires_at", .datetime, .required)
            .field("used_at", .datetime)
            .unique(on: "token_hash", name: "uq_event_tickets_token_hash")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(EventTicket.schema).delete()
    }
}

struct TicketResponse: Content {
    var ticket: String
    var expiresIn: Int
    enum CodingKeys: String, CodingKey {
        case ticket
        case expiresIn = "expires_in"
    }
}

/// Signs in a request to an event stream by `?ticket=`, consuming the ticket. Runs before the
/// ordinary authentication, which then finds the caller already signed in.
struct TicketAuthenticator: AsyncMiddleware {
    let clock: AppClock
    let writes: Writes

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        guard let ticket = request.query[String.self, at: "ticket"] else { return try await next.respond(to: request) }
        let now = clock.now()
        let digest = OpaqueToken.digest(ticket)
        struct Row: Decodable { let user_id: UUID; let session_id: UUID }
        // One conditional update redeems the ticket, so it works once even when raced.
        let row: Row? = try await request.db.writeTransaction(writes) { tx in
            guard let sql = tx as? any SQLDatabase else { return nil }
            return try await sql.raw("""
                UPDATE event_tickets SET used_at = \(bind: now)
                WHERE token_hash = \(bind: digest) AND used_at IS NULL AND expires_at > \(bind: now)
                RETURNING user_id, session_id
                """).first(decoding: Row.self)
        }
        guard let row,
              let session = try await Session.find(row.session_id, on: request.db), session.isActive(at: now),
              let user = try await User.find(row.user_id, on: request.db)
        else {
            throw ProblemError.unauthorized("The ticket is invalid, expired or already used; ask for a new one.", slug: "invalid-ticket")
        }
        request.auth.login(Principal(userID: row.user_id, role: user.role.rawValue, sessionID: row.session_id, method: .bearer))
        return try await next.respond(to: request)
    }
}
