import Fluent
import SQLKit

/// `push_subscriptions`: browsers that receive Web Push for a person; and the cursor of the
/// follower that turns notifications into pushes.
struct CreatePushSubscriptions: AsyncMigration {
    var name: String { "2026-12-06-CreatePushSubscriptions" }

    func prepare(on database: any Database) async throws {
        try await database.schema(PushSubscription.table)
            .id()
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("endpoint", .string, .required)
            .field("p256dh", .string, .required)
            .field("auth", .string, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "endpoint", name: "uq_push_subscriptions_endpoint")
            .create()
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.create(index: "ix_push_subscriptions_user").on(PushSubscription.table).column("user_id").run()
        try await sql.raw("INSERT INTO event_cursors (name, position) SELECT 'push', COALESCE(MAX(id), 0) FROM events").run()
    }

    func revert(on database: any Database) async throws {
        if let sql = database as? any SQLDatabase { try await sql.raw("DELETE FROM event_cursors WHERE name = 'push'").run() }
        try await database.schema(PushSubscription.table).delete()
    }
}
