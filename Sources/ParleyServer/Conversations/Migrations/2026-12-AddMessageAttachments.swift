import Fluent
import SQLKit

/// The files a message carries (JSON, written in the send's transaction) and their names, which
/// full-text search indexes beside the body: the search index is made again over both.
struct AddMessageAttachments: AsyncMigration {
    var name: String { "2026-12-06-AddMessageAttachments" }

    func prepare(on database: any Database) async throws {
        // One column per statement: SQLite adds one at a time.
        try await database.schema(Message.schema).field("attachments", .string).update()
        try await database.schema(Message.schema).field("attachment_names", .string).update()
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        if sql.dialect.name == "sqlite" {
            try await Self.dropSQLiteIndex(sql)
            try await Self.createSQLiteIndex(sql, columns: ["body", "attachment_names"])
        } else {
            try await sql.raw("DROP INDEX IF EXISTS ix_messages_search").run()
            try await sql.raw("ALTER TABLE messages DROP COLUMN search").run()
            try await sql.raw("""
                ALTER TABLE messages ADD COLUMN search tsvector
                GENERATED ALWAYS AS (to_tsvector('simple', body || ' ' || coalesce(attachment_names, ''))) STORED
                """).run()
            try await sql.raw("CREATE INDEX ix_messages_search ON messages USING GIN (search)").run()
        }
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        if sql.dialect.name == "sqlite" {
            try await Self.dropSQLiteIndex(sql)
            try await Self.createSQLiteIndex(sql, columns: ["body"])
        } else {
            try await sql.raw("DROP INDEX IF EXISTS ix_messages_search").run()
            try await sql.raw("ALTER TABLE messages DROP COLUMN search").run()
            try await sql.raw("ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED").run()
            try await sql.raw("CREATE INDEX ix_messages_search ON messages USING GIN (search)").run()
        }
        try await database.schema(Message.schema).deleteField("attachment_names").update()
        try await database.schema(Message.schema).deleteField("attachments").update()
    }

    private static func dropSQLiteIndex(_ sql: any SQLDatabase) async throws {
        for trigger in ["messages_fts_insert", "messages_fts_delete", "messages_fts_update"] {
            try await sql.raw("DROP TRIGGER IF EXISTS \(ident: trigger)").run()
        }
        try await sql.raw("DROP TABLE IF EXISTS messages_fts").run()
    }

    /// An external-content FTS5 index over `columns` of `messages`, kept in step by triggers.
    private static func createSQLiteIndex(_ sql: any SQLDatabase, columns: [String]) async throws {
        let list = columns.joined(separator: ", ")
        let new = columns.map { "new.\($0)" }.joined(separator: ", ")
        let old = columns.map { "old.\($0)" }.joined(separator: ", ")
        try await sql.raw("""
            CREATE VIRTUAL TABLE messages_fts USING fts5(\(unsafeRaw: list), content='messages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')
            """).run()
        try await sql.raw("""
            CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
              INSERT INTO messages_fts(rowid, \(unsafeRaw: list)) VALUES (new.rowid, \(unsafeRaw: new));
            END
            """).run()
        try await sql.raw("""
            CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
              INSERT INTO messages_fts(messages_fts, rowid, \(unsafeRaw: list)) VALUES ('delete', old.rowid, \(unsafeRaw: old));
            END
            """).run()
        try await sql.raw("""
            CREATE TRIGGER messages_fts_update AFTER UPDATE OF \(unsafeRaw: list) ON messages BEGIN
              INSERT INTO messages_fts(messages_fts, rowid, \(unsafeRaw: list)) VALUES ('delete', old.rowid, \(unsafeRaw: old));
              INSERT INTO messages_fts(rowid, \(unsafeRaw: list)) VALUES (new.rowid, \(unsafeRaw: new));
            END
            """).run()
        try await sql.raw("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')").run()
    }
}
