import Fluent

/// A message's structure (formatting and resolved mentions, JSON), parsed once when it is
/// written. Messages written before have none; their structure is parsed when they are read.
struct AddMessageContent: AsyncMigration {
    var name: String { "2026-12-02-AddMessageContent" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Message.schema).field("content", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Message.schema).deleteField("content").update()
    }
}
