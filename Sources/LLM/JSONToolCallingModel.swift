import AgentGraph
import Foundation

/// Tool calls for models whose native tool calling is unreliable (small local models): the
/// tools are described in the prompt and the reply is asked for as one JSON object
/// constrained by a JSON Schema (`response_format`), so even a tiny model produces a
/// well-formed call: `{"tool":"weather","arguments":{…}}` or `{"reply":"…"}`. Chosen per
/// model in its configuration; requests without tools pass through unchanged.
public struct JSONToolCallingModel: ChatModel {
    public let base: any ChatModel

    public init(_ base: any ChatModel) {
        self.base = base
    }

    /// The schema of the one object the model must answer with.
    static func schema(for tools: [ToolDefinition], allowReply: Bool) -> JSONValue {
        var choices: [JSONValue] = tools.map { tool in
            ["type": "object",
             "properties": ["tool": ["type": "string", "const": .string(tool.name)], "arguments": tool.parameters],
             "required": ["tool", "arguments"]]
        }
        if allowReply {
            choices.append(["type": "object", "properties": ["reply": ["type": "string"]], "required": ["reply"]])
        }
        return ["anyOf": .array(choices)]
    }

    /// The request as the base model sees it: no native tools; the tools and the answer's
    /// form in a system message; earlier calls and results as plain turns.
    func rewrite(_ request: ChatRequest) -> ChatRequest {
        var tools = request.tools
        if case .tool(let name) = request.toolChoice { tools = tools.filter { $0.name == name } }
        let allowReply: Bool = switch request.toolChoice {
        case .required, .tool: false
        case .auto, .none: true
        }
        var lines = ["You can use these tools. Answer with one JSON object and nothing else:"]
        for tool in tools {
            lines.append(#"- {"tool":"\#(tool.name)","arguments":\#(tool.parameters.jsonText)}: \#(tool.description)"#)
        }
        if allowReply { lines.append(#"- {"reply":"your answer"} to answer without a tool."#) }
        var messages: [ChatMessage] = [.system(lines.joined(separator: "\n"))]
        for message in request.messages {
            switch message.role {
            case .assistant where !message.toolCalls.isEmpty:
                let calls = message.toolCalls.map { #"{"tool":"\#($0.name)","arguments":\#($0.arguments)}"# }
                messages.append(.assistant(calls.joined(separator: "\n")))
            case .tool:
                messages.append(.user("Result of the tool call \(message.toolCallID ?? ""): \(message.content)"))
            default:
                messages.append(ChatMessage(role: message.role, content: message.content))
            }
        }
        var rewritten = request
        rewritten.messages = messages
        rewritten.tools = []
        rewritten.toolChoice = .auto
        rewritten.responseFormat = ResponseFormat(name: "tool_call", schema: Self.schema(for: tools, allowReply: allowReply))
        return rewritten
    }

    /// Reads the model's JSON answer back into a reply or a tool call.
    static func interpret(_ text: String, tools: [ToolDefinition], usage: Usage, model: String) throws(LLMError) -> ChatResponse {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let object = try? JSONDecoder().decode(JSONValue.self, from: Data(trimmed.utf8)), case .object(let fields) = object else {
            throw .invalidOutput("the model did not answer with a JSON object")
        }
        if case .string(let name)? = fields["tool"] {
            guard tools.contains(where: { $0.name == name }) else { throw .invalidOutput("the model called an unknown tool \(name)") }
            let arguments = fields["arguments"] ?? [:]
            let call = ToolCall(id: "call_" + String(UUID().uuidString.prefix(8)).lowercased(), name: name, arguments: arguments.jsonText)
            return ChatResponse(message: .assistant("", toolCalls: [call]), finishReason: .toolCalls, usage: usage, model: model)
        }
        if case .string(let reply)? = fields["reply"] {
            return ChatResponse(message: .assistant(reply), finishReason: .stop, usage: usage, model: model)
        }
        throw .invalidOutput("the model's JSON names neither a tool nor a reply")
    }

    public func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse {
        guard !request.tools.isEmpty, request.toolChoice != .none else { return try await base.complete(request) }
        let answer = try await base.complete(rewrite(request))
        return try Self.interpret(answer.message.content, tools: request.tools, usage: answer.usage, model: answer.model)
    }

    /// The answer must be whole before it can be read, so it arrives as one piece.
    public func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error> {
        guard !request.tools.isEmpty, request.toolChoice != .none else { return base.stream(request) }
        return .running { continuation in
            let reply = try await complete(request)
            if !reply.message.content.isEmpty { continuation.yield(.text(reply.message.content)) }
            for (index, call) in reply.message.toolCalls.enumerated() {
                continuation.yield(.toolCall(index: index, id: call.id, name: call.name, arguments: call.arguments))
            }
            continuation.yield(.usage(reply.usage))
            continuation.yield(.finish(reply.finishReason))
        }
    }
}
