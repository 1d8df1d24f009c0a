import Fluent
import Vapor

/// A signed-in session: one refresh-token family (API clients) or one browser cookie.
/// Revoking it ends every token of the family at once.
final class Session: Model, @unchecked Sendable {
    static let schema = "sessions"

    enum Kind: String, Codable, Sendable { case api, browser }

    // identity
    @ID(key: .id) var id: UUID?
    @Parent(key: "user_id") var user: User

    // data
    @Enum(key: "kind") var kind: Kind
    /// SHA-256 of the browser cookie value; nil for API sessions.
    @OptionalField(key: "token_hash") var tokenHash: String?
    @Field(key: "expires_at") var expiresAt: Date
    @OptionalField(key: "revoked_at") var revokedAt: Date?
    @OptionalField(key: "revoked_reason") var revokedReason: String?

    // timestamps
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?

    init() {}

    init(id: UUID = UUID(), userID: UUID, kind: Kind, tokenHash: String?, expiresAt: Date) {
        self.id = id
        self.$user.id = userID
        self.kind = kind
        self.tokenHash = tokenHash
        self.expiresAt = expiresAt
    }

    func isActive(at now: Date) -> Bool {
        revokedAt == nil && expiresAt > now
    }
}

extension Session {
    /// Revokes the given sessions of a user that are still open.
    static func revoke(userID: UUID, except keep: UUID? = nil, reason: String, at now: Date, on db: any Database) async throws {
        var query = Session.query(on: db)
            .filter(\.$user.$id == userID)
            .filter(\.$revokedAt == nil)
        if let keep { query = query.filter(\.$id != keep) }
        try await query.set(\.$revokedAt, to: now).set(\.$revokedReason, to: reason).update()
    }
}
