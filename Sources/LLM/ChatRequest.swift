import AgentGraph

/// What is asked of a model.
public struct ChatRequest: Sendable, Hashable {
    public var messages: [ChatMessage]
    public var tools: [ToolDefinition]
    public var toolChoice: ToolChoice
    public var responseFormat: ResponseFormat?
    /// 0 makes a request deterministic (and cacheable).
    public var temperature: Double?
    public var maxTokens: Int?
    public var stop: [String]

    public init(messages: [ChatMessage], tools: [ToolDefinition] = [], toolChoice: ToolChoice = .auto,
                responseFormat: ResponseFormat? = nil, temperature: Double? = nil, maxTokens: Int? = nil, stop: [String] = []) {
        self.messages = messages
        self.tools = tools
        self.toolChoice = toolChoice
        self.responseFormat = responseFormat
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.stop = stop
    }
}

/// Tokens a request used.
public struct Usage: Sendable, Hashable, Codable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens the provider served from its cache.
    public var cachedTokens: Int

    public init(promptTokens: Int = 0, completionTokens: Int = 0, cachedTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
    }

    public var totalTokens: Int { promptTokens + completionTokens }

    public static func + (lhs: Usage, rhs: Usage) -> Usage {
        Usage(promptTokens: lhs.promptTokens + rhs.promptTokens, completionTokens: lhs.completionTokens + rhs.completionTokens,
              cachedTokens: lhs.cachedTokens + rhs.cachedTokens)
    }
}

/// Why the model stopped.
public enum FinishReason: String, Sendable, Hashable, Codable {
    case stop
    case length
    case toolCalls = "tool_calls"
    case contentFilter = "content_filter"
}

/// A whole reply.
public struct ChatResponse: Sendable, Hashable {
    public var message: ChatMessage
    public var finishReason: FinishReason
    public var usage: Usage
    /// The model that answered, as the provider names it.
    public var model: String

    public init(message: ChatMessage, finishReason: FinishReason, usage: Usage, model: String) {
        self.message = message
        self.finishReason = finishReason
        self.usage = usage
        self.model = model
    }
}

/// One piece of a streamed reply.
public enum ChatDelta: Sendable, Hashable {
    case text(String)
    /// A fragment of tool call number `index`: its id and name come first, then the
    /// arguments' JSON text in pieces.
    case toolCall(index: Int, id: String?, name: String?, arguments: String)
    case usage(Usage)
    case finish(FinishReason)
}
