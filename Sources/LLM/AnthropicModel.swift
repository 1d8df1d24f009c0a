import AgentGraph
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OpenAPIRuntime

/// Anthropic's Messages API (`/v1/messages`), whole or streamed.
///
/// Anthropic has no JSON-Schema response format, so structured output is asked for as a tool
/// the model must call, whose input is the answer; the reply's text is that input as JSON.
public struct AnthropicModel: ChatModel {
    public struct Configuration: Sendable, CustomStringConvertible {
        /// Up to the API root, e.g. `https://api.anthropic.com`.
        public var baseURL: String
        public var model: String
        /// Sent as `x-api-key`; kept out of `description`, logs and errors.
        public var apiKey: String?
        /// Anthropic requires a limit on every request.
        public var defaultMaxTokens: Int
        public var timeout: Duration

        public init(baseURL: String = "https://api.anthropic.com", model: String, apiKey: String? = nil,
                    defaultMaxTokens: Int = 1024, timeout: Duration = .seconds(300)) {
            self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            self.model = model
            self.apiKey = apiKey
            self.defaultMaxTokens = defaultMaxTokens
            self.timeout = timeout
        }

        public var description: String {
            "Anthropic model \(model) at \(baseURL)" + (apiKey == nil ? "" : " (with an API key)")
        }
    }

    public static let version = "2023-06-01"
    public let configuration: Configuration
    private let client: HTTPClient

    public init(_ configuration: Configuration, client: HTTPClient = OpenAICompatibleModel.sharedClient) {
        self.configuration = configuration
        self.client = client
    }

    // MARK: Requests

    func body(_ request: ChatRequest, stream: Bool) throws(LLMError) -> JSONValue {
        var body: [String: JSONValue] = [
            "model": .string(configuration.model),
            "max_tokens": .integer(Int64(request.maxTokens ?? configuration.defaultMaxTokens)),
            "messages": .array(try Self.messages(request.messages)),
            "stream": .bool(stream),
        ]
        let system = request.messages.filter { $0.role == .system }.map(\.content).joined(separator: "\n\n")
        if !system.isEmpty { body["system"] = .string(system) }
        var tools = request.tools.map { tool -> JSONValue in
            ["name": .string(tool.name), "description": .string(tool.description), "input_schema": tool.parameters]
        }
        var choice: JSONValue? = switch request.toolChoice {
        case .auto: request.tools.isEmpty ? nil : ["type": "auto"]
        case .none: request.tools.isEmpty ? nil : ["type": "none"]
        case .required: ["type": "any"]
        case .tool(let name): ["type": "tool", "name": .string(name)]
        }
        if let format = request.responseFormat {
            tools.append(["name": .string(format.name), "description": "Give the answer in this form.", "input_schema": format.schema])
            choice = ["type": "tool", "name": .string(format.name)]
        }
        if !tools.isEmpty { body["tools"] = .array(tools) }
        if let choice { body["tool_choice"] = choice }
        if let temperature = request.temperature { body["temperature"] = .number(temperature) }
        if !request.stop.isEmpty { body["stop_sequences"] = .array(request.stop.map { .string($0) }) }
        return .object(body)
    }

    /// User and assistant turns as content blocks; tool results are user turns, and
    /// consecutive ones share a turn as Anthropic requires.
    static func messages(_ messages: [ChatMessage]) throws(LLMError) -> [JSONValue] {
        var out: [(role: String, blocks: [JSONValue])] = []
        func append(_ role: String, _ blocks: [JSONValue]) {
            if role == "user", let last = out.last, last.role == "user", last.blocks.contains(where: { $0["type"] == "tool_result" }) {
                out[out.count - 1].blocks += blocks
            } else {
                out.append((role, blocks))
            }
        }
        for message in messages {
            switch message.role {
            case .system:
                continue
            case .user:
                append("user", [["type": "text", "text": .string(message.content)]])
            case .assistant:
                var blocks: [JSONValue] = message.content.isEmpty ? [] : [["type": "text", "text": .string(message.content)]]
                for call in message.toolCalls {
                    blocks.append(["type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": try call.decodeArguments()])
                }
                append("assistant", blocks)
            case .tool:
                append("user", [["type": "tool_result", "tool_use_id": .string(message.toolCallID ?? ""), "content": .string(message.content)]])
            }
        }
        return out.map { ["role": .string($0.role), "content": .array($0.blocks)] }
    }

    private func httpRequest(_ request: ChatRequest, stream: Bool) throws(LLMError) -> HTTPClientRequest {
        var http = HTTPClientRequest(url: configuration.baseURL + "/v1/messages")
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        http.headers.add(name: "anthropic-version", value: Self.version)
        if let key = configuration.apiKey { http.headers.add(name: "x-api-key", value: key) }
        let encoded: Data
        do {
            encoded = try JSONEncoder().encode(try body(request, stream: stream))
        } catch let error as LLMError {
            throw error
        } catch {
            throw .badRequest("the request could not be encoded")
        }
        http.body = .bytes(ByteBuffer(bytes: encoded))
        return http
    }

    private var deadline: TimeAmount {
        .nanoseconds(Int64(configuration.timeout.components.seconds) * 1_000_000_000
            + configuration.timeout.components.attoseconds / 1_000_000_000)
    }

    // MARK: Replies

    struct Block: Decodable {
        let type: String
        let text: String?
        let id: String?
        let name: String?
        let input: JSONValue?
    }

    struct WireUsage: Decodable {
        let input_tokens: Int?
        let output_tokens: Int?
        let cache_read_input_tokens: Int?
    }

    struct Message: Decodable {
        let model: String?
        let content: [Block]?
        let stop_reason: String?
        let usage: WireUsage?
    }

    static func finishReason(_ raw: String?) -> FinishReason? {
        switch raw {
        case nil: nil
        case "max_tokens": .length
        case "tool_use": .toolCalls
        case "refusal": .contentFilter
        default: .stop
        }
    }

    public func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse {
        let http = try httpRequest(request, stream: false)
        let data: Data
        do {
            let response = try await client.execute(http, timeout: deadline)
            data = Data(try await response.body.collect(upTo: 64 << 20).readableBytesView)
            try ProviderHTTP.check(response.status, headers: response.headers, body: data)
        } catch let error as LLMError {
            throw error
        } catch {
            throw ProviderHTTP.transport(error)
        }
        guard let message = try? JSONDecoder().decode(Message.self, from: data), let content = message.content else {
            throw .invalidOutput("the reply is not a message")
        }
        var text = "", calls: [ToolCall] = []
        for block in content {
            switch block.type {
            case "text": text += block.text ?? ""
            case "tool_use":
                let input = block.input?.jsonText ?? "{}"
                if let format = request.responseFormat, block.name == format.name { text += input } else {
                    calls.append(ToolCall(id: block.id ?? "toolu_\(calls.count)", name: block.name ?? "", arguments: input))
                }
            default: continue
            }
        }
        var finish = Self.finishReason(message.stop_reason) ?? .stop
        if request.responseFormat != nil, calls.isEmpty, finish == .toolCalls { finish = .stop }
        let usage = Usage(promptTokens: message.usage?.input_tokens ?? 0, completionTokens: message.usage?.output_tokens ?? 0,
                          cachedTokens: message.usage?.cache_read_input_tokens ?? 0)
        return ChatResponse(message: .assistant(text, toolCalls: calls), finishReason: finish, usage: usage,
                            model: message.model ?? configuration.model)
    }

    struct Event: Decodable {
        struct Delta: Decodable {
            let type: String?
            let text: String?
            let partial_json: String?
            let stop_reason: String?
        }
        struct Failure: Decodable { let type: String?; let message: String? }
        let type: String
        let index: Int?
        let content_block: Block?
        let delta: Delta?
        let message: Message?
        let usage: WireUsage?
        let error: Failure?
    }

    public func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error> {
        let client = self.client, deadline = self.deadline
        let built = Result { () throws(LLMError) -> HTTPClientRequest in try httpRequest(request, stream: true) }
        let formatTool = request.responseFormat?.name
        return ProviderHTTP.stream(client: client, request: built, deadline: deadline) { events, continuation in
            var usage = Usage(), stopped = false
            // Content block index → tool call number (text blocks have none), and the
            // blocks that carry the structured answer as text.
            var toolIndex: [Int: Int] = [:], answerBlocks = Set<Int>()
            let decoder = JSONDecoder()
            for try await sse in events {
                guard let data = sse.data, let event = try? decoder.decode(Event.self, from: Data(data.utf8)) else { continue }
                switch event.type {
                case "message_start":
                    usage.promptTokens = event.message?.usage?.input_tokens ?? 0
                    usage.cachedTokens = event.message?.usage?.cache_read_input_tokens ?? 0
                case "content_block_start":
                    guard let index = event.index, let block = event.content_block, block.type == "tool_use" else { continue }
                    if let formatTool, block.name == formatTool {
                        answerBlocks.insert(index)
                    } else {
                        let number = toolIndex.count
                        toolIndex[index] = number
                        continuation.yield(.toolCall(index: number, id: block.id, name: block.name, arguments: ""))
                    }
                case "content_block_delta":
                    guard let index = event.index, let delta = event.delta else { continue }
                    if let text = delta.text, !text.isEmpty { continuation.yield(.text(text)) }
                    if let json = delta.partial_json, !json.isEmpty {
                        if answerBlocks.contains(index) {
                            continuation.yield(.text(json))
                        } else if let number = toolIndex[index] {
                            continuation.yield(.toolCall(index: number, id: nil, name: nil, arguments: json))
                        }
                    }
                case "message_delta":
                    if let output = event.usage?.output_tokens { usage.completionTokens = output }
                    if var reason = Self.finishReason(event.delta?.stop_reason) {
                        if reason == .toolCalls, toolIndex.isEmpty { reason = .stop }
                        continuation.yield(.usage(usage))
                        continuation.yield(.finish(reason))
                        stopped = true
                    }
                case "error":
                    let message = event.error?.message ?? "the stream reported an error"
                    switch event.error?.type {
                    case "overloaded_error", "api_error": throw LLMError.unavailable(message)
                    case "rate_limit_error": throw LLMError.rateLimited(retryAfter: nil)
                    default: throw LLMError.badRequest(message)
                    }
                case "message_stop":
                    break
                default:
                    continue
                }
            }
            if !stopped { throw LLMError.streamCut("the server closed the stream before the reply finished") }
        }
    }
}
