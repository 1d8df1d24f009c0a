import Fluent
import SQLKit

struct CreateConversations: AsyncMigration {
    var name: String { "2026-11-25-CreateConversations" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Conversation.schema)
            .id()
            .field("kind", .string, .required)
            .field("visibility", .string)
            .field("title", .string)
            .field("topic", .string)
            .field("last_seq", .int64, .required, .sql(.default(0)))
            .field("direct_key", .string)
            .field("created_by", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .field("last_activity_at", .datetime, .required)
            .field("deleted_at", .datetime)
            .unique(on: "direct_key", name: "uq_conversations_direct_key")
            .create()
        try await database.schema(Membership.schema)
            .id()
            .field("conversation_id", .uuid, .required, .references(Conversation.schema, .id, onDelete: .cascade))
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("role", .string, .required)
            .field("last_read_seq", .int64, .required, .sql(.default(0)))
            .field("muted", .bool, .required, .sql(.default(false)))
            .field("joined_at", .datetime, .required)
            .unique(on: "conversation_id", "user_id", name: "uq_memberships_conversation_user")
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "ix_memberships_user_id").on(Membership.schema).column("user_id").run()
        try await sql.create(index: "ix_conversations_activity").on(Conversation.schema)
            .column("last_activity_at").column("id").run()
        try await sql.create(index: "ix_conversations_title").on(Conversation.schema).column("title").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Membership.schema).delete()
        try await database.schema(Conversation.schema).delete()
    }
}
