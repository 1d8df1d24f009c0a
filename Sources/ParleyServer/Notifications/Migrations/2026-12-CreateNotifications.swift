import Fluent
import SQLKit

/// `notifications`: what needs a person's attention (a mention, a direct message, a reply in
/// a thread they took part in, an approval request), once per source.
struct CreateNotifications: AsyncMigration {
    var name: String { "2026-12-02-CreateNotifications" }

    func prepare(on database: any Database) async throws {
        try await database.schema(UserNotification.table)
            .id()
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("kind", .string, .required)
            .field("conversation_id", .uuid, .required, .references(Conversation.schema, .id, onDelete: .cascade))
            .field("message_id", .uuid)
            .field("message_seq", .int)
            .field("run_id", .uuid)
            .field("actor_id", .uuid)
            .field("source", .string, .required)
            .field("excerpt", .string)
            .field("created_at", .datetime, .required)
            .field("read_at", .datetime)
            .unique(on: "user_id", "source", name: "uq_notifications_user_source")
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "ix_notifications_user_created").on(UserNotification.table)
            .column("user_id").column("created_at").column("id").run()
        try await sql.create(index: "ix_notifications_user_conversation").on(UserNotification.table)
            .column("user_id").column("conversation_id").column("message_seq").run()
        // The follower starts at the end of the log as it is now: messages sent before
        // notifications existed notify no one.
        try await sql.raw("INSERT INTO event_cursors (name, position) SELECT 'notifications', COALESCE(MAX(id), 0) FROM events").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(UserNotification.table).delete()
        if let sql = database as? any SQLDatabase { try await sql.raw("DELETE FROM event_cursors WHERE name = 'notifications'").run() }
    }
}
