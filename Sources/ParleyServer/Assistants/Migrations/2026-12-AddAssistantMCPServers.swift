import Fluent

/// The MCP servers an assistant may use (a JSON array of configured server names).
struct AddAssistantMCPServers: AsyncMigration {
    var name: String { "2026-12-02-AddAssistantMCPServers" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Assistant.schema).field("mcp_servers", .string, .required, .sql(.default("[]"))).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Assistant.schema).deleteField("mcp_servers").update()
    }
}
