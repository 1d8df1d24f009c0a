import Fluent
import SQLKit

struct CreateMessages: AsyncMigration {
    var name: String { "2026-11-25-CreateMessages" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Message.schema)
            .id()
            .field("conversation_id", .uuid, .required, .references(Conversation.schema, .id, onDelete: .cascade))
            .field("seq", .int64, .required)
            .field("author_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("body", .string, .required)
            .field("reply_to_id", .uuid)
            .field("reply_to_seq", .int64)
            .field("version", .int64, .required, .sql(.default(1)))
            .field("idempotency_key", .string)
            .field("request_digest", .string)
            .field("created_at", .datetime, .required)
            .field("edited_at", .datetime)
            .field("deleted_at", .datetime)
            .unique(on: "conversation_id", "seq", name: "uq_messages_conversation_seq")
            .unique(on: "author_id", "idempotency_key", name: "uq_messages_author_idempotency_key")
            .create()
        try await database.schema(MessageRevision.schema)
            .id()
            .field("message_id", .uuid, .required, .references(Message.schema, .id, onDelete: .cascade))
            .field("body", .string, .required)
            .field("created_at", .datetime, .required)
            .create()
        try await database.schema(Reaction.schema)
            .id()
            .field("message_id", .uuid, .required, .references(Message.schema, .id, onDelete: .cascade))
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("emoji", .string, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "message_id", "user_id", "emoji", name: "uq_reactions_message_user_emoji")
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "ix_messages_thread").on(Message.schema)
            .column("conversation_id").column("reply_to_seq").run()
        try await sql.create(index: "ix_message_revisions_message_id").on(MessageRevision.schema).column("message_id").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Reaction.schema).delete()
        try await database.schema(MessageRevision.schema).delete()
        try await database.schema(Message.schema).delete()
    }
}
