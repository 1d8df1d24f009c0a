import Fluent

/// Sampling settings an assistant sends with every model request.
struct AddAssistantSampling: AsyncMigration {
    var name: String { "2026-12-02-AddAssistantSampling" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Assistant.schema).field("temperature", .double).update()
        try await database.schema(Assistant.schema).field("max_tokens", .int).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Assistant.schema).deleteField("max_tokens").update()
        try await database.schema(Assistant.schema).deleteField("temperature").update()
    }
}
