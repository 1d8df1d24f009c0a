import Fluent
import SQLKit

/// Runs start in the transaction of the message that asks for them, so the cursor with which
/// an event-log follower used to start them is gone.
struct DropAssistantCursor: AsyncMigration {
    var name: String { "2026-12-08-DropAssistantCursor" }

    func prepare(on database: any Database) async throws {
        // The old follower moved its cursor only past messages that started runs, so messages
        // after it were either checked (and asked nobody) or not yet read when the server
        // stopped. Those start no run now: say how many there may be, so an administrator
        // knows to look.
        if let sql = database as? any SQLDatabase {
            struct Row: Decodable { let n: Int }
            let unread = try await sql.raw("""
                SELECT COUNT(*) AS n FROM events e
                WHERE e.type = 'message.created' AND e.id > (SELECT COALESCE(MAX(position), 0) FROM assistant_cursor)
                  AND e.conversation_id IN (SELECT m.conversation_id FROM memberships m JOIN users u ON u.id = m.user_id
                                            WHERE u.kind = 'assistant')
                """).first(decoding: Row.self)?.n ?? 0
            if unread > 0 {
                database.logger.info("runs now start with their messages; messages in conversations with an assistant sent after the last run the event-log follower started will not start one",
                                     metadata: ["messages": .stringConvertible(unread)])
            }
        }
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
