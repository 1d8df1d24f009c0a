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

extension EventTicket {
    /// Deletes tickets that expired before `now` (used or not); returns how many went.
    static func deleteExpired(before now: Date, gate: WriteGate?, on db: any Database) async throws -> Int {
        try await db.writeTransaction(gate) { tx in
            let expired = try await EventTicket.query(on: tx).filter(\.$expiresAt < now).count()
            try await EventTicket.query(on: tx).filter(\.$expiresAt < now).delete()
            return expired
        }
    }
}
