import AgentGraph
import Foundation
import Vapor

/// An assistant as administrators see and change it.
struct AssistantDTO: Content, Equatable {
    var id: String
    var handle: String
    var displayName: String
    var provider: String
    /// Whether this server has the provider configured (an assistant without one answers that
    /// no model is configured).
    var providerConfigured: Bool
    var model: String
    var systemPrompt: String
    var toolCalling: Assistant.ToolCalling
    var toolChoice: Assistant.ToolChoice
    var tools: [String]
    var approvalTools: [String]
    var httpTools: [Assistant.HTTPTool]
    var mcpServers: [String]
    var busyPolicy: Assistant.BusyPolicy
    var dailyTokensPerConversation: Int?
    var dailyTokensPerUser: Int?
    var maxSteps: Int
    var runTimeoutSeconds: Int
    var temperature: Double?
    var maxTokens: Int?
    var createdAt: Date?
    var updatedAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, handle, provider, model, tools
        case displayName = "display_name"
        case providerConfigured = "provider_configured"
        case systemPrompt = "system_prompt"
        case toolCalling = "tool_calling"
        case toolChoice = "tool_choice"
        case approvalTools = "approval_tools"
        case httpTools = "http_tools"
        case mcpServers = "mcp_servers"
        case busyPolicy = "busy_policy"
        case dailyTokensPerConversation = "daily_tokens_per_conversation"
        case dailyTokensPerUser = "daily_tokens_per_user"
        case maxSteps = "max_steps"
        case runTimeoutSeconds = "run_timeout_seconds"
        case temperature
        case maxTokens = "max_tokens"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    init(_ assistant: Assistant, user: User, configured: Bool) {
        id = assistant.id?.wire ?? ""
        handle = user.handle
        displayName = user.displayName
        provider = assistant.provider
        providerConfigured = configured
        model = assistant.model
        systemPrompt = assistant.systemPrompt
        toolCalling = assistant.toolCalling
        toolChoice = assistant.toolChoice
        tools = assistant.tools
        approvalTools = assistant.approvalTools
        httpTools = assistant.httpTools
        mcpServers = assistant.mcpServers
        busyPolicy = assistant.busyPolicy
        dailyTokensPerConversation = assistant.dailyTokensPerConversation
        dailyTokensPerUser = assistant.dailyTokensPerUser
        maxSteps = assistant.maxSteps
        runTimeoutSeconds = assistant.runTimeoutSeconds
        temperature = assistant.temperature
        maxTokens = assistant.maxTokens
        createdAt = assistant.createdAt
        updatedAt = assistant.updatedAt
    }
}

/// The body of `POST /v1/assistants` and `PATCH /v1/assistants/{id}` (on PATCH every field is
/// optional; a `null` budget removes it).
struct AssistantInput: Decodable, Sendable {
    var handle: String?
    var displayName: String?
    var provider: String?
    var model: String?
    var systemPrompt: String?
    var toolCalling: String?
    var toolChoice: String?
    var tools: [String]?
    var approvalTools: [String]?
    var httpTools: [Assistant.HTTPTool]?
    var mcpServers: [String]?
    var busyPolicy: String?
    var dailyTokensPerConversation: Int??
    var dailyTokensPerUser: Int??
    var maxSteps: Int?
    var runTimeoutSeconds: Int?
    var temperature: Double??
    var maxTokens: Int??

    /// The same wire names as the assistant it changes.
    typealias CodingKeys = AssistantDTO.CodingKeys

    init() {}

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        handle = try c.decodeIfPresent(String.self, forKey: .handle)
        displayName = try c.decodeIfPresent(String.self, forKey: .displayName)
        provider = try c.decodeIfPresent(String.self, forKey: .provider)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        systemPrompt = try c.decodeIfPresent(String.self, forKey: .systemPrompt)
        toolCalling = try c.decodeIfPresent(String.self, forKey: .toolCalling)
        toolChoice = try c.decodeIfPresent(String.self, forKey: .toolChoice)
        tools = try c.decodeIfPresent([String].self, forKey: .tools)
        approvalTools = try c.decodeIfPresent([String].self, forKey: .approvalTools)
        httpTools = try c.decodeIfPresent([Assistant.HTTPTool].self, forKey: .httpTools)
        mcpServers = try c.decodeIfPresent([String].self, forKey: .mcpServers)
        busyPolicy = try c.decodeIfPresent(String.self, forKey: .busyPolicy)
        dailyTokensPerConversation = try c.decodePresence(Int.self, forKey: .dailyTokensPerConversation)
        dailyTokensPerUser = try c.decodePresence(Int.self, forKey: .dailyTokensPerUser)
        maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps)
        runTimeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .runTimeoutSeconds)
        temperature = try c.decodePresence(Double.self, forKey: .temperature)
        maxTokens = try c.decodePresence(Int.self, forKey: .maxTokens)
    }
}

/// A run with its trace: what the model saw and did, step by step.
struct RunDetailDTO: Content {
    var run: RunDTO
    var steps: [RunStepDTO]

    func encode(to encoder: any Encoder) throws {
        try run.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(steps, forKey: Key(stringValue: "steps")!)
    }

    init(run: RunDTO, steps: [RunStepDTO]) {
        self.run = run
        self.steps = steps
    }

    init(from decoder: any Decoder) throws {
        run = try RunDTO(from: decoder)
        steps = try decoder.container(keyedBy: Key.self).decode([RunStepDTO].self, forKey: Key(stringValue: "steps")!)
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

struct RunStepDTO: Content {
    var position: Int
    var kind: String
    var name: String
    var startedAt: Date
    var durationMS: Double
    var detail: JSONValue

    enum CodingKeys: String, CodingKey {
        case position, kind, name, detail
        case startedAt = "started_at"
        case durationMS = "duration_ms"
    }

    init(_ step: AssistantRunStep) {
        position = step.position
        kind = step.kind
        name = step.name
        startedAt = step.startedAt
        durationMS = step.durationMS
        detail = (try? JSONDecoder().decode(JSONValue.self, from: Data(step.detail.utf8))) ?? .null
    }
}

struct ApprovalInput: Decodable, Sendable {
    var approved: Bool?
    var reason: String?
}
