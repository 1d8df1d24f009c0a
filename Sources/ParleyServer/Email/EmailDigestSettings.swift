import Fluent
import Foundation
import SQLKit

/// A person's e-mail digest: whether they want it and how far it has reported; the owner of
/// the `email_digests` table's SQL. No row: wanted, nothing sent yet.
struct EmailDigestSettings: Sendable, Equatable {
    static let table = "email_digests"

    var userID: UUID
    var enabled: Bool
    /// Notifications created up to here have been in a digest.
    var sentThrough: Date?

    private struct Row: Decodable {
        let user_id: UUID, enabled: Bool, sent_through: Date?
    }

    static func find(_ userID: UUID, on db: any Database) async throws -> EmailDigestSettings {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        let row = try await sql.raw("SELECT user_id, enabled, sent_through FROM email_digests WHERE user_id = \(bind: userID)")
            .first(decoding: Row.self)
        return EmailDigestSettings(userID: userID, enabled: row?.enabled ?? true, sentThrough: row?.sent_through)
    }

    /// Of `userIDs`, those who turned digests off.
    static func optedOut(_ userIDs: [UUID], on db: any Database) async throws -> Set<UUID> {
        guard let sql = db as? any SQLDatabase, !userIDs.isEmpty else { return [] }
        struct UserRow: Decodable { let user_id: UUID }
        return Set(try await sql.raw("SELECT user_id FROM email_digests WHERE enabled = \(bind: false) AND user_id IN (\(binds: userIDs))")
            .all(decoding: UserRow.self).map(\.user_id))
    }

    static func setEnabled(_ enabled: Bool, for userID: UUID, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("""
            INSERT INTO email_digests (user_id, enabled) VALUES (\(bind: userID), \(bind: enabled))
            ON CONFLICT (user_id) DO UPDATE SET enabled = excluded.enabled
            """).run()
    }

    static func markSent(through date: Date, for userID: UUID, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("""
            INSERT INTO email_digests (user_id, enabled, sent_through) VALUES (\(bind: userID), \(bind: true), \(bind: date))
            ON CONFLICT (user_id) DO UPDATE SET sent_through = excluded.sent_through
            """).run()
    }
}
