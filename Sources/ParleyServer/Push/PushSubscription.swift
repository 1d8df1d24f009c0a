import Fluent
import Foundation
import SQLKit

/// A browser's Web Push subscription for one person, and the owner of the
/// `push_subscriptions` table's SQL.
struct PushSubscription: Sendable, Equatable {
    static let table = "push_subscriptions"

    var id: UUID
    var userID: UUID
    /// The push service's URL for this browser (unique: a browser re-subscribing replaces it).
    var endpoint: String
    /// The browser's P-256 public key (uncompressed, 65 bytes).
    var p256dh: Data
    /// The browser's 16-byte authentication secret.
    var auth: Data
    var createdAt: Date

    private struct Row: Decodable {
        let id: UUID, user_id: UUID, endpoint: String, p256dh: String, auth: String, created_at: Date
        var subscription: PushSubscription? {
            guard let key = Data(base64URLEncoded: p256dh), let secret = Data(base64URLEncoded: auth) else { return nil }
            return PushSubscription(id: id, userID: user_id, endpoint: endpoint, p256dh: key, auth: secret, createdAt: created_at)
        }
    }

    /// Adds or replaces (by endpoint) a subscription; returns the stored one.
    static func upsert(_ subscription: PushSubscription, on db: any Database) async throws -> PushSubscription {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        let row = try await sql.raw("""
            INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at)
            VALUES (\(bind: subscription.id), \(bind: subscription.userID), \(bind: subscription.endpoint),
                    \(bind: subscription.p256dh.base64URLEncodedString()), \(bind: subscription.auth.base64URLEncodedString()),
                    \(bind: subscription.createdAt))
            ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth,
                created_at = excluded.created_at
            RETURNING id, user_id, endpoint, p256dh, auth, created_at
            """).first(decoding: Row.self)
        guard let stored = row?.subscription else { throw StorageError.unreadable("push subscription") }
        return stored
    }

    static func find(_ id: UUID, on db: any Database) async throws -> PushSubscription? {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw("SELECT id, user_id, endpoint, p256dh, auth, created_at FROM push_subscriptions WHERE id = \(bind: id)")
            .first(decoding: Row.self)?.subscription
    }

    static func all(of userID: UUID, on db: any Database) async throws -> [PushSubscription] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw("""
            SELECT id, user_id, endpoint, p256dh, auth, created_at FROM push_subscriptions
            WHERE user_id = \(bind: userID) ORDER BY created_at, id
            """).all(decoding: Row.self).compactMap(\.subscription)
    }

    /// Of `userIDs`, those with at least one subscription.
    static func subscribed(_ userIDs: [UUID], on db: any Database) async throws -> Set<UUID> {
        guard let sql = db as? any SQLDatabase, !userIDs.isEmpty else { return [] }
        struct UserRow: Decodable { let user_id: UUID }
        return Set(try await sql.raw("SELECT DISTINCT user_id FROM push_subscriptions WHERE user_id IN (\(binds: userIDs))")
            .all(decoding: UserRow.self).map(\.user_id))
    }

    /// Deletes one of the person's subscriptions; false when they have no such one.
    static func delete(_ id: UUID, of userID: UUID, on db: any Database) async throws -> Bool {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct IDRow: Decodable { let id: UUID }
        return try await sql.raw("DELETE FROM push_subscriptions WHERE id = \(bind: id) AND user_id = \(bind: userID) RETURNING id")
            .first(decoding: IDRow.self) != nil
    }

    /// Forgets a subscription its push service says is gone (404 or 410).
    static func delete(endpoint: String, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("DELETE FROM push_subscriptions WHERE endpoint = \(bind: endpoint)").run()
    }
}
