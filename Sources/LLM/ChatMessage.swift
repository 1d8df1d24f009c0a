import AgentGraph
import Foundation

/// One message of a conversation with a model.
public struct ChatMessage: Sendable, Hashable, Codable {
    public enum Role: String, Sendable, Hashable, Codable {
        case system, user, assistant, tool
    }

    public var role: Role
    /// The text; empty for an assistant message that only calls tools.
    public var content: String
    /// The tool calls an assistant message made.
    public var toolCalls: [ToolCall]
    /// For a `tool` message: the call it answers.
    public var toolCallID: String?

    public init(role: Role, content: String, toolCalls: [ToolCall] = [], toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
    }

    public static func system(_ text: String) -> ChatMessage { ChatMessage(role: .system, content: text) }
    public static func user(_ text: String) -> ChatMessage { ChatMessage(role: .user, content: text) }
    public static func assistant(_ text: String, toolCalls: [ToolCall] = []) -> ChatMessage {
        ChatMessage(role: .assistant, content: text, toolCalls: toolCalls)
    }
    public static func tool(_ result: String, callID: String) -> ChatMessage {
        ChatMessage(role: .tool, content: result, toolCallID: callID)
    }
}

/// A tool the model may call: a name, what it does, and its arguments as a JSON Schema.
public struct ToolDefinition: Sendable, Hashable, Codable {
    public var name: String
    public var description: String
    /// A JSON Schema of an object (`{"type":"object","properties":…}`).
    public var parameters: JSONValue

    public init(name: String, description: String, parameters: JSONValue) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }
}

/// A call the model made: the tool's name and its arguments as JSON text (as the model wrote
/// them; `decodeArguments` checks they parse).
public struct ToolCall: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }

    /// The arguments as JSON; a model that wrote something else gets `.invalidOutput`.
    public func decodeArguments() throws(LLMError) -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(arguments.utf8))
        } catch {
            throw .invalidOutput("the arguments of tool call \(id) (\(name)) are not JSON")
        }
    }
}

/// Whether and which tool the model must call.
public enum ToolChoice: Sendable, Hashable {
    case auto
    case none
    case required
    case tool(String)
}

/// Structured output: the reply must be a JSON value matching the schema.
public struct ResponseFormat: Sendable, Hashable {
    public var name: String
    public var schema: JSONValue

    public init(name: String, schema: JSONValue) {
        self.name = name
        self.schema = schema
    }
}
