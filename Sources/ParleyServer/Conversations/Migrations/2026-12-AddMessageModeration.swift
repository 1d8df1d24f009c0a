import Fluent
import SQLKit

/// What moderation decided about each message, the score and the model version that gave it;
/// indexed by state for the moderators' queue (held and flagged messages).
struct AddMessageModeration: AsyncMigration {
    var name: String { "2026-12-07-AddMessageModeration" }

    func prepare(on database: any Database) async throws {
        // One column per statement: SQLite adds one at a time.
        try await database.schema(Message.schema).field("moderation_state", .string).update()
        try await database.schema(Message.schema).field("moderation_score", .double).update()
        try await database.schema(Message.schema).field("moderation_model", .string).update()
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("CREATE INDEX ix_messages_moderation ON messages (moderation_state) WHERE moderation_state IS NOT NULL").run()
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("DROP INDEX IF EXISTS ix_messages_moderation").run()
        try await database.schema(Message.schema).deleteField("moderation_model").update()
        try await database.schema(Message.schema).deleteField("moderation_score").update()
        try await database.schema(Message.schema).deleteField("moderation_state").update()
    }
}
