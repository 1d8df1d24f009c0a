import Fluent
import SQLKit

/// What watching a deployed model needs: each moderator's decision keeps the score the serving
/// version gave (so live precision and recall are known per version), and a shadow version's
/// scores are kept beside production's for the same messages.
struct AddModelMonitoring: AsyncMigration {
    var name: String { "2026-12-08-AddModelMonitoring" }

    func prepare(on database: any Database) async throws {
        try await database.schema(TrainingExample.schema)
            .field("scored_by", .string)
            .update()
        try await database.schema(TrainingExample.schema)
            .field("score", .double)
            .update()
        try await database.schema(ShadowScore.schema)
            .id()
            .field("model_name", .string, .required)
            .field("shadow_version", .string, .required)
            .field("production_version", .string, .required)
            .field("message_id", .uuid, .required)
            .field("conversation_id", .uuid, .required)
            .field("production_score", .double, .required)
            .field("shadow_score", .double, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "shadow_version", "message_id")
            .create()
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("CREATE INDEX ix_model_shadow_scores_created ON model_shadow_scores (created_at)").run()
        // The shadow follower's cursor, at the end of the log: it compares messages from now on.
        try await sql.raw("INSERT INTO event_cursors (name, position) SELECT 'shadow', COALESCE(MAX(id), 0) FROM events").run()
    }

    func revert(on database: any Database) async throws {
        if let sql = database as? any SQLDatabase { try await sql.raw("DELETE FROM event_cursors WHERE name = 'shadow'").run() }
        try await database.schema(ShadowScore.schema).delete()
        try await database.schema(TrainingExample.schema).deleteField("score").update()
        try await database.schema(TrainingExample.schema).deleteField("scored_by").update()
    }
}
