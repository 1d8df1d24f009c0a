import Fluent
import SQLKit

/// `files`: what people uploaded (the bytes live in a `FileStore`, under their SHA-256), and
/// `file_chunks`: the database store's bytes, for servers whose nodes share no disk.
struct CreateFiles: AsyncMigration {
    var name: String { "2026-12-06-CreateFiles" }

    func prepare(on database: any Database) async throws {
        try await database.schema(StoredFile.table)
            .id()
            .field("uploader_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("digest", .string, .required)
            .field("size", .int64, .required)
            .field("media_type", .string, .required)
            .field("name", .string, .required)
            .field("width", .int)
            .field("height", .int)
            // Set once, in the transaction of the message that carries the file.
            .field("conversation_id", .uuid, .references(Conversation.schema, .id, onDelete: .cascade))
            .field("message_id", .uuid)
            // A picture's thumbnail: its bytes' digest once made, or `thumbnail_failed` when the
            // picture cannot be decoded (the client shows the name instead).
            .field("thumbnail_digest", .string)
            .field("thumbnail_width", .int)
            .field("thumbnail_height", .int)
            .field("thumbnail_failed", .bool, .required, .sql(.default(false)))
            .field("created_at", .datetime, .required)
            .create()
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.create(index: "ix_files_message").on(StoredFile.table).column("message_id").run()
        try await sql.create(index: "ix_files_digest").on(StoredFile.table).column("digest").run()
        try await sql.create(index: "ix_files_uploader").on(StoredFile.table).column("uploader_id").column("created_at").run()

        try await database.schema(DatabaseFileStore.table)
            .field("digest", .string, .required)
            .field("idx", .int, .required)
            .field("bytes", .data, .required)
            .field("stored_at", .datetime, .required)
            .unique(on: "digest", "idx", name: "uq_file_chunks_digest_idx")
            .create()
        // The follower that forgets deleted messages' files starts at the end of the log.
        try await sql.raw("INSERT INTO event_cursors (name, position) SELECT 'files', COALESCE(MAX(id), 0) FROM events").run()
    }

    func revert(on database: any Database) async throws {
        if let sql = database as? any SQLDatabase { try await sql.raw("DELETE FROM event_cursors WHERE name = 'files'").run() }
        try await database.schema(DatabaseFileStore.table).delete()
        try await database.schema(StoredFile.table).delete()
    }
}
