import Fluent

/// Structured citations on a message (an assistant's reply citing earlier messages).
struct AddMessageCitations: AsyncMigration {
    var name: String { "2026-12-02-AddMessageCitations" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Message.schema).field("citations", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Message.schema).deleteField("citations").update()
    }
}
