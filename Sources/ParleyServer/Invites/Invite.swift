import Crypto
import Fluent
import Foundation
import SQLKit

/// An invite link, and the owner of the `invites` table's SQL. The link carries a random token;
/// only its digest is stored, so the table cannot be used to make links.
struct Invite: Sendable, Equatable {
    static let table = "invites"

    var id: UUID
    /// The conversation it lets people into (nil: the site only).
    var conversationID: UUID?
    var createdBy: UUID
    var maxUses: Int?
    var uses: Int
    var expiresAt: Date?
    var revokedAt: Date?
    var createdAt: Date

    func usable(at now: Date) -> Bool {
        revokedAt == nil && (expiresAt.map { $0 > now } ?? true) && (maxUses.map { uses < $0 } ?? true)
    }

    static func digest(_ token: String) -> String { OpaqueToken.digest(token) }

    private struct Row: Decodable {
        let id: UUID, conversation_id: UUID?, created_by: UUID, max_uses: Int?, uses: Int, expires_at: Date?, revoked_at: Date?
        let created_at: Date
        var invite: Invite {
            Invite(id: id, conversationID: conversation_id, createdBy: created_by, maxUses: max_uses, uses: uses, expiresAt: expires_at,
                   revokedAt: revoked_at, createdAt: created_at)
        }
    }

    private static let columns: SQLQueryString = "id, conversation_id, created_by, max_uses, uses, expires_at, revoked_at, created_at"

    static func insert(_ invite: Invite, token: String, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("""
            INSERT INTO invites (id, token_hash, conversation_id, created_by, max_uses, uses, expires_at, created_at)
            VALUES (\(bind: invite.id), \(bind: digest(token)), \(bind: invite.conversationID), \(bind: invite.createdBy),
                    \(bind: invite.maxUses), 0, \(bind: invite.expiresAt), \(bind: invite.createdAt))
            """).run()
    }

    static func find(token: String, on db: any Database) async throws -> Invite? {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw("SELECT " + columns + " FROM invites WHERE token_hash = \(bind: digest(token))")
            .first(decoding: Row.self)?.invite
    }

    static func find(id: UUID, on db: any Database) async throws -> Invite? {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw("SELECT " + columns + " FROM invites WHERE id = \(bind: id)").first(decoding: Row.self)?.invite
    }

    /// Invites someone made (or everyone's, for `nil`), newest first.
    static func list(createdBy userID: UUID?, limit: Int, on db: any Database) async throws -> [Invite] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        let filter: SQLQueryString = userID.map { " WHERE created_by = \(bind: $0)" } ?? ""
        return try await sql.raw("SELECT " + columns + " FROM invites" + filter + " ORDER BY created_at DESC, id DESC LIMIT \(unsafeRaw: String(limit))")
            .all(decoding: Row.self).map(\.invite)
    }

    /// Counts one use if the invite is still usable; returns it, or nil when it is not (used
    /// up, expired, revoked or unknown). Conditional, so concurrent uses never exceed the limit.
    static func use(token: String, at now: Date, on db: any Database) async throws -> Invite? {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw("""
            UPDATE invites SET uses = uses + 1
            WHERE token_hash = \(bind: digest(token)) AND revoked_at IS NULL
              AND (expires_at IS NULL OR expires_at > \(bind: now)) AND (max_uses IS NULL OR uses < max_uses)
            RETURNING
            """ + " " + columns).first(decoding: Row.self)?.invite
    }

    static func revoke(_ id: UUID, at now: Date, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("UPDATE invites SET revoked_at = \(bind: now) WHERE id = \(bind: id) AND revoked_at IS NULL").run()
    }
}
