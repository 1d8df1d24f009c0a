import Fluent
import SQLKit

/// Runs start in the transaction of the message that asks for them, so the cursor with which
/// an event-log follower used to start them is gone.
struct DropAssistantCursor: AsyncMigration {
    var name: String { "2026-12-08-DropAssistantCursor" }

    func prepare(on database: any Database) async throws {
        try await database.schema("assistant_cursor").delete()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("assistant_cursor")
            .field("name", .string, .identifier(auto: false))
            .field("position", .int, .required)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.raw("INSERT INTO assistant_cursor (name, position) SELECT 'dispatch', COALESCE(MAX(id), 0) FROM events").run()
    }
}
