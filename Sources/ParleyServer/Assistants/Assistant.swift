import AgentGraph
import Fluent
import Foundation
import SQLKit
import Vapor

/// An assistant's configuration. The assistant itself is a user of kind `assistant` (its
/// handle, display name and profile live in `users` and `profiles`); this row, keyed by the
/// same id, says how it answers.
final class Assistant: Model, @unchecked Sendable {
    static let schema = "assistants"

    /// How tool calls are asked of the model.
    enum ToolCalling: String, Codable, Sendable, CaseIterable {
        /// The provider's own tool calling.
        case native
        /// One JSON object constrained by a schema (for small local models whose native tool
        /// calls are unreliable).
        case json
    }

    /// Whether the model must call a tool on its first turn (OpenAI's `tool_choice`).
    enum ToolChoice: String, Codable, Sendable, CaseIterable {
        /// The model decides.
        case auto
        /// The first turn must call one of the tools; later turns decide.
        case required
    }

    /// What happens when the assistant is asked again in a conversation while a run is
    /// still going there.
    enum BusyPolicy: String, Codable, Sendable, CaseIterable {
        /// The new request waits and runs after the current one.
        case queue
        /// The new request is refused with a visible notice.
        case reject
        /// The current run is cancelled and the new request runs.
        case interrupt
    }

    /// An HTTP endpoint an administrator configured as a tool. The model fills in the
    /// arguments (a JSON object matching `parameters`), never the address.
    struct HTTPTool: Codable, Sendable, Equatable {
        var name: String
        var description: String
        var url: String
        /// A JSON Schema for the arguments object.
        var parameters: JSONValue
    }

    @ID(custom: "id", generatedBy: .user) var id: UUID?
    @Field(key: "provider") var provider: String
    @Field(key: "model") var model: String
    @Field(key: "system_prompt") var systemPrompt: String
    @Enum(key: "tool_calling") var toolCalling: ToolCalling
    @Enum(key: "tool_choice") var toolChoice: ToolChoice
    /// JSON arrays of tool names.
    @Field(key: "tools") var toolsJSON: String
    @Field(key: "approval_tools") var approvalToolsJSON: String
    @Field(key: "http_tools") var httpToolsJSON: String
    /// Configured MCP servers whose tools the assistant may use (JSON array of names).
    @Field(key: "mcp_servers") var mcpServersJSON: String
    @Enum(key: "busy_policy") var busyPolicy: BusyPolicy
    @OptionalField(key: "daily_tokens_per_conversation") var dailyTokensPerConversation: Int?
    @OptionalField(key: "daily_tokens_per_user") var dailyTokensPerUser: Int?
    /// Graph steps a run may take (model and tool turns).
    @Field(key: "max_steps") var maxSteps: Int
    /// Seconds a run may take, approval waits excluded.
    @Field(key: "run_timeout_seconds") var runTimeoutSeconds: Int
    /// Sampling temperature sent with every request (the provider's default when nil); 0
    /// makes a model's answers repeatable.
    @OptionalField(key: "temperature") var temperature: Double?
    /// Most tokens one model turn may write (the provider's default when nil).
    @OptionalField(key: "max_tokens") var maxTokens: Int?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    var tools: [String] {
        get { (try? JSONDecoder().decode([String].self, from: Data(toolsJSON.utf8))) ?? [] }
        set { toolsJSON = Self.json(newValue) }
    }

    var approvalTools: [String] {
        get { (try? JSONDecoder().decode([String].self, from: Data(approvalToolsJSON.utf8))) ?? [] }
        set { approvalToolsJSON = Self.json(newValue) }
    }

    var mcpServers: [String] {
        get { (try? JSONDecoder().decode([String].self, from: Data(mcpServersJSON.utf8))) ?? [] }
        set { mcpServersJSON = Self.json(newValue) }
    }

    var httpTools: [HTTPTool] {
        get { (try? JSONDecoder().decode([HTTPTool].self, from: Data(httpToolsJSON.utf8))) ?? [] }
        set { httpToolsJSON = Self.json(newValue) }
    }

    private static func json(_ value: some Encodable) -> String {
        String(decoding: (try? EventLog.encoder.encode(value)) ?? Data("[]".utf8), as: UTF8.self)
    }
}

extension Assistant {
    /// The assistants among `userIDs`, by id.
    static func find(_ userIDs: [UUID], on db: any Database) async throws -> [UUID: Assistant] {
        guard !userIDs.isEmpty else { return [:] }
        let rows = try await Assistant.query(on: db).filter(\.$id ~~ userIDs).all()
        return Dictionary(rows.compactMap { row in row.id.map { ($0, row) } }, uniquingKeysWith: { first, _ in first })
    }
}
