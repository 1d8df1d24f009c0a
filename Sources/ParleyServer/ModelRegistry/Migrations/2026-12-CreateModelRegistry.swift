import Fluent
import SQLKit

/// The model registry: every trained version with its artifact, metrics and stage (at most one
/// version of a model in each serving stage, held by partial unique indexes), and the labelled
/// examples training reads (seed data and moderators' decisions).
struct CreateModelRegistry: AsyncMigration {
    var name: String { "2026-12-07-CreateModelRegistry" }

    func prepare(on database: any Database) async throws {
        try await database.schema(ModelVersion.schema)
            .id()
            .field("name", .string, .required)
            .field("version", .int, .required)
            .field("algorithm", .string, .required)
            .field("hyperparameters", .string, .required)
            .field("data_hash", .string, .required)
            .field("example_count", .int, .required)
            .field("report", .string, .required)
            .field("trained_by", .uuid)
            .field("stage", .string, .required)
            .field("previous_id", .uuid)
            .field("note", .string)
            .field("artifact", .data, .required)
            .field("checksum", .string, .required)
            .field("created_at", .datetime, .required)
            .field("stage_changed_at", .datetime, .required)
            .unique(on: "name", "version")
            .create()
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        for stage in [ModelVersion.Stage.production, .shadow, .canary] {
            try await sql.raw("""
                CREATE UNIQUE INDEX \(ident: "ux_model_versions_\(stage.rawValue)") ON model_versions (name)
                WHERE stage = \(unsafeRaw: "'\(stage.rawValue)'")
                """).run()
        }
        try await database.schema(TrainingExample.schema)
            .id()
            .field("model_name", .string, .required)
            .field("text", .string, .required)
            .field("label", .bool, .required)
            .field("source", .string, .required)
            .field("source_key", .string, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "model_name", "source_key")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(TrainingExample.schema).delete()
        try await database.schema(ModelVersion.schema).delete()
    }
}
