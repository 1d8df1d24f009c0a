import Fluent

/// `event_cursors`: one row per durable follower of the event log.
struct CreateEventCursors: AsyncMigration {
    var name: String { "2026-12-02-CreateEventCursors" }

    func prepare(on database: any Database) async throws {
        try await database.schema("event_cursors")
            .field("name", .string, .identifier(auto: false))
            .field("position", .int, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("event_cursors").delete()
    }
}
