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

/// Full-text search over message bodies: an FTS5 index kept in step by triggers on SQLite,
/// a generated `tsvector` column with a GIN index on PostgreSQL.
struct AddMessageSearch: AsyncMigration {
    var name: String { "2026-11-25-AddMessageSearch" }

    func prepare(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        switch sql.dialect.name {
        case "sqlite":
            try await sql.raw("""
                CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')
                """).run()
            try await sql.raw("""
                CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
                  INSERT INTO messages_fts(rowid, body) VALUES (new.rowid, new.body);
                END
                """).run()
            try await sql.raw("""
                CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
                  INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
                END
                """).run()
            try await sql.raw("""
                CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
                  INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
                  INSERT INTO messages_fts(rowid, body) VALUES (new.rowid, new.body);
                END
                """).run()
        default:
            try await sql.raw("""
                ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
                """).run()
            try await sql.raw("CREATE INDEX ix_messages_search ON messages USING GIN (search)").run()
        }
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        switch sql.dialect.name {
        case "sqlite":
            for trigger in ["messages_fts_insert", "messages_fts_delete", "messages_fts_update"] {
                try await sql.raw("DROP TRIGGER IF EXISTS \(ident: trigger)").run()
            }
            try await sql.raw("DROP TABLE IF EXISTS messages_fts").run()
        default:
            try await sql.raw("DROP INDEX IF EXISTS ix_messages_search").run()
            try await sql.raw("ALTER TABLE messages DROP COLUMN IF EXISTS search").run()
        }
    }
}
