import Fluent
import SQLKit

struct CreateJobs: AsyncMigration {
    var name: String { "2026-12-02-CreateJobs" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Job.schema)
            .id()
            .field("queue", .string, .required)
            .field("payload", .string, .required)
            .field("state", .string, .required)
            .field("dedupe_key", .string)
            .field("attempts", .int, .required)
            .field("max_attempts", .int, .required)
            .field("run_at", .datetime, .required)
            .field("locked_by", .string)
            .field("lease_expires_at", .datetime)
            .field("last_error", .string)
            .field("created_at", .datetime, .required)
            .field("finished_at", .datetime)
            .unique(on: "dedupe_key", name: "uq_jobs_dedupe_key")
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        // What a claim scans: ready jobs of a queue, oldest due first; and expired leases.
        try await sql.create(index: "ix_jobs_queue_state_run_at").on(Job.schema).column("queue").column("state").column("run_at").run()
        try await sql.create(index: "ix_jobs_state_lease").on(Job.schema).column("state").column("lease_expires_at").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Job.schema).delete()
    }
}
