import Fluent
import Vapor

/// One refresh token of a session's family. Only its SHA-256 is stored; each use rotates it.
final class RefreshToken: Model, @unchecked Sendable {
    static let schema = "refresh_tokens"

    // identity
    @ID(key: .id) var id: UUID?
    @Parent(key: "session_id") var session: Session
    @Field(key: "token_hash") var tokenHash: String

    // data
    @Field(key: "expires_at") var expiresAt: Date
    /// Set when the token was exchanged for a new one; presenting it again is reuse.
    @OptionalField(key: "rotated_at") var rotatedAt: Date?
    @OptionalField(key: "replaced_by") var replacedBy: UUID?

    // timestamps
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?

    init() {}

    init(id: UUID = UUID(), sessionID: UUID, tokenHash: String, expiresAt: Date) {
        self.id = id
        self.$session.id = sessionID
        self.tokenHash = tokenHash
        self.expiresAt = expiresAt
    }
}
