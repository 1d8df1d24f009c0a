import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Vapor

struct CreateEventHorizon: AsyncMigration {
    var name: String { "2026-11-26-CreateEventHorizon" }

    func prepare(on database: any Database) async throws {
        try await database.schema("event_horizon")
            .field("id", .int, .identifier(auto: false))
            .field("pruned_through", .int64, .required)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.raw("INSERT INTO event_horizon (id, pruned_through) VALUES (1, 0)").run()
        try await sql.create(index: "ix_events_created_at").on(Event.schema).column("created_at").run()
    }

    func revert(on database: any Database) async throws {
        if let sql = database as? any SQLDatabase {
            try await sql.drop(index: "ix_events_created_at").run()
        }
        try await database.schema("event_horizon").delete()
    }
}
