import Fluent
import SQLKit

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
