import Fluent
import SQLKit

/// Moderation policies (the site's, and conversations' overrides) and members' reports.
struct CreateModeration: AsyncMigration {
    var name: String { "2026-12-07-CreateModeration" }

    func prepare(on database: any Database) async throws {
        try await database.schema(ModerationPolicy.schema)
            .id()
            .field("scope", .string, .required)
            .field("flag_at", .double)
            .field("hold_at", .double)
            .field("block_at", .double)
            .field("updated_by", .uuid)
            .field("updated_at", .datetime, .required)
            .unique(on: "scope")
            .create()
        try await database.schema(MessageReport.schema)
            .id()
            .field("message_id", .uuid, .required, .references(Message.schema, .id, onDelete: .cascade))
            .field("conversation_id", .uuid, .required)
            .field("reporter_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("reason", .string, .required)
            .field("created_at", .datetime, .required)
            .field("resolved_at", .datetime)
            .unique(on: "message_id", "reporter_id")
            .create()
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("CREATE INDEX ix_message_reports_open ON message_reports (message_id) WHERE resolved_at IS NULL").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(MessageReport.schema).delete()
        try await database.schema(ModerationPolicy.schema).delete()
    }
}
