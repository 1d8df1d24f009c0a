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
    /// A configuration as plain SQL reads it: every run reads its assistant's, and Fluent's
    /// model decoding reflects over the model's properties on every row.
    struct Row: Decodable {
        let id: UUID
        let provider: String
        let model: String
        let system_prompt: String
        let tool_calling: ToolCalling
        let tool_choice: ToolChoice
        let tools: String
        let approval_tools: String
        let http_tools: String
        let mcp_servers: String
        let busy_policy: BusyPolicy
        let daily_tokens_per_conversation: Int?
        let daily_tokens_per_user: Int?
        let max_steps: Int
        let run_timeout_seconds: Int
        let temperature: Double?
        let max_tokens: Int?
        let created_at: Date?
        let updated_at: Date?
    }

    /// A stored configuration, for reading (see `configurations`).
    convenience init(_ row: Row) {
        self.init()
        id = row.id
        $id.exists = true
        provider = row.provider
        model = row.model
        systemPrompt = row.system_prompt
        toolCalling = row.tool_calling
        toolChoice = row.tool_choice
        toolsJSON = row.tools
        approvalToolsJSON = row.approval_tools
        httpToolsJSON = row.http_tools
        mcpServersJSON = row.mcp_servers
        busyPolicy = row.busy_policy
        dailyTokensPerConversation = row.daily_tokens_per_conversation
        dailyTokensPerUser = row.daily_tokens_per_user
        maxSteps = row.max_steps
        runTimeoutSeconds = row.run_timeout_seconds
        temperature = row.temperature
        maxTokens = row.max_tokens
        createdAt = row.created_at
        updatedAt = row.updated_at
    }

    private static let columns: SQLQueryString = """
        id, provider, model, system_prompt, tool_calling, tool_choice, tools, approval_tools, http_tools, mcp_servers,
        busy_policy, daily_tokens_per_conversation, daily_tokens_per_user, max_steps, run_timeout_seconds, temperature,
        max_tokens, created_at, updated_at
        """

    /// The configurations of the assistants among `userIDs`, by id, for reading. Filled from
    /// plain rows, so Fluent sees every field as set: saving one would write every column.
    /// What is edited and saved is read with Fluent (`AssistantService`).
    static func configurations(_ userIDs: [UUID], on db: any Database) async throws -> [UUID: Assistant] {
        guard !userIDs.isEmpty else { return [:] }
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        let rows = try await sql.raw("SELECT \(columns) FROM assistants WHERE id IN (\(SQLList(userIDs.map { SQLBind($0) })))")
            .all(decoding: Row.self)
        return Dictionary(rows.map { ($0.id, Assistant($0)) }, uniquingKeysWith: { first, _ in first })
    }
}
