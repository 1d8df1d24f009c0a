import Fluent
import SQLKit

struct CreateEvents: AsyncMigration {
    var name: String { "2026-11-25-CreateEvents" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Event.schema)
            .field("id", .int64, .identifier(auto: true))
            .field("conversation_id", .uuid, .required, .references(Conversation.schema, .id, onDelete: .cascade))
            .field("user_id", .uuid)
            .field("type", .string, .required)
            .field("payload", .string, .required)
            .field("created_at", .datetime, .required)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "ix_events_conversation_id").on(Event.schema).column("conversation_id").column("id").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Event.schema).delete()
    }
}
