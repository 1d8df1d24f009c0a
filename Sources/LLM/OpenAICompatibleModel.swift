import AgentGraph
import AsyncHTTPClient
import OpenAPIRuntime
import Foundation
import NIOCore
import NIOHTTP1

/// Any server that speaks OpenAI's `/v1/chat/completions`: OpenAI itself, vLLM, Ollama,
/// llama.cpp's server, LM Studio. Streaming replies arrive as Server-Sent Events, parsed by
/// swift-openapi-runtime's SSE decoder. (`mattt/EventSource` was the first choice; its 1.1.1
/// does not build on Linux, where it calls `URLSession.bytes`.)
public struct OpenAICompatibleModel: ChatModel {
    public struct Configuration: Sendable, CustomStringConvertible {
        /// Up to and including `/v1`, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8081/v1`.
        public var baseURL: String
        public var model: String
        /// Sent as `Authorization: Bearer …`; kept out of `description`, logs and errors.
        public var apiKey: String?
        /// The longest a whole reply may take (connecting, waiting, streaming).
        public var timeout: Duration

        public init(baseURL: String, model: String, apiKey: String? = nil, timeout: Duration = .seconds(300)) {
            self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            self.model = model
            self.apiKey = apiKey
            self.timeout = timeout
        }

        public var description: String {
            "OpenAI-compatible model \(model) at \(baseURL)" + (apiKey == nil ? "" : " (with an API key)")
        }
    }

    public let configuration: Configuration
    private let client: HTTPClient

    /// `client` defaults to one shared by every model of this process, which gives up
    /// connecting after 10 seconds (AsyncHTTPClient's own default keeps retrying a refused
    /// connection for 90).
    public init(_ configuration: Configuration, client: HTTPClient = OpenAICompatibleModel.sharedClient) {
        self.configuration = configuration
        self.client = client
    }

    public static let sharedClient = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(timeout: .init(connect: .seconds(10))))

    // MARK: Requests

    func body(_ request: ChatRequest, stream: Bool) -> JSONValue {
        var body: [String: JSONValue] = [
            "model": .string(configuration.model),
            "messages": .array(request.messages.map(Self.message)),
            "stream": .bool(stream),
        ]
        if stream { body["stream_options"] = ["include_usage": true] }
        if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map { tool in
                ["type": "function", "function": ["name": .string(tool.name), "description": .string(tool.description),
                                                  "parameters": tool.parameters]]
            })
            body["tool_choice"] = switch request.toolChoice {
            case .auto: "auto"
            case .none: "none"
            case .required: "required"
            case .tool(let name): ["type": "function", "function": ["name": .string(name)]]
            }
        }
        if let format = request.responseFormat {
            body["response_format"] = ["type": "json_schema",
                                       "json_schema": ["name": .string(format.name), "schema": format.schema, "strict": true]]
        }
        if let temperature = request.temperature { body["temperature"] = .number(temperature) }
        if let maxTokens = request.maxTokens { body["max_tokens"] = .integer(Int64(maxTokens)) }
        if !request.stop.isEmpty { body["stop"] = .array(request.stop.map { .string($0) }) }
        return .object(body)
    }

    static func message(_ message: ChatMessage) -> JSONValue {
        var out: [String: JSONValue] = ["role": .string(message.role.rawValue), "content": .string(message.content)]
        if !message.toolCalls.isEmpty {
            out["tool_calls"] = .array(message.toolCalls.map { call in
                ["id": .string(call.id), "type": "function", "function": ["name": .string(call.name), "arguments": .string(call.arguments)]]
            })
        }
        if let id = message.toolCallID { out["tool_call_id"] = .string(id) }
        return .object(out)
    }

    private func httpRequest(_ request: ChatRequest, stream: Bool) throws(LLMError) -> HTTPClientRequest {
        var http = HTTPClientRequest(url: configuration.baseURL + "/chat/completions")
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        if stream { http.headers.add(name: "Accept", value: "text/event-stream") }
        if let key = configuration.apiKey { http.headers.add(name: "Authorization", value: "Bearer \(key)") }
        do {
            http.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body(request, stream: stream))))
        } catch {
            throw .badRequest("the request could not be encoded")
        }
        return http
    }

    private var deadline: TimeAmount {
        .nanoseconds(Int64(configuration.timeout.components.seconds) * 1_000_000_000
            + configuration.timeout.components.attoseconds / 1_000_000_000)
    }

    // MARK: Complete

    public func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse {
        let http = try httpRequest(request, stream: false)
        let data: Data
        do {
            let response = try await client.execute(http, timeout: deadline)
            let body = try await response.body.collect(upTo: 64 << 20)
            data = Data(body.readableBytesView)
            try ProviderHTTP.check(response.status, headers: response.headers, body: data)
        } catch let error as LLMError {
            throw error
        } catch {
            throw ProviderHTTP.transport(error)
        }
        return try Self.parseCompletion(data, model: configuration.model)
    }

    struct Completion: Decodable {
        struct Choice: Decodable {
            struct Message: Decodable {
                let content: String?
                let tool_calls: [Call]?
            }
            let message: Message
            let finish_reason: String?
        }
        struct Call: Decodable {
            struct Function: Decodable { let name: String?; let arguments: String? }
            let index: Int?
            let id: String?
            let function: Function?
        }
        let model: String?
        let choices: [Choice]?
        let usage: WireUsage?
    }

    struct WireUsage: Decodable {
        struct Details: Decodable { let cached_tokens: Int? }
        let prompt_tokens: Int?
        let completion_tokens: Int?
        let prompt_tokens_details: Details?

        var usage: Usage {
            Usage(promptTokens: prompt_tokens ?? 0, completionTokens: completion_tokens ?? 0,
                  cachedTokens: prompt_tokens_details?.cached_tokens ?? 0)
        }
    }

    static func parseCompletion(_ data: Data, model: String) throws(LLMError) -> ChatResponse {
        guard let completion = try? JSONDecoder().decode(Completion.self, from: data) else {
            throw .invalidOutput("the reply is not a chat completion")
        }
        guard let choice = completion.choices?.first else { throw .invalidOutput("the reply has no choice") }
        let calls = (choice.message.tool_calls ?? []).enumerated().map { index, call in
            ToolCall(id: call.id ?? "call_\(index)", name: call.function?.name ?? "", arguments: call.function?.arguments ?? "")
        }
        return ChatResponse(message: .assistant(choice.message.content ?? "", toolCalls: calls),
                            finishReason: finishReason(choice.finish_reason) ?? (calls.isEmpty ? .stop : .toolCalls),
                            usage: completion.usage?.usage ?? Usage(), model: completion.model ?? model)
    }

    static func finishReason(_ raw: String?) -> FinishReason? {
        switch raw {
        case nil: nil
        case "length": .length
        case "tool_calls", "function_call": .toolCalls
        case "content_filter": .contentFilter
        default: .stop
        }
    }

    // MARK: Stream

    public func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error> {
        let client = self.client, deadline = self.deadline
        let built = Result { () throws(LLMError) -> HTTPClientRequest in try httpRequest(request, stream: true) }
        return ProviderHTTP.stream(client: client, request: built, deadline: deadline) { events, continuation in
            var finished = false, done = false
            for try await event in events {
                guard let data = event.data else { continue }
                if data == "[DONE]" {
                    done = true
                    break
                }
                for delta in try Self.parseChunk(data) {
                    if case .finish = delta { finished = true }
                    continuation.yield(delta)
                }
            }
            if !done && !finished { throw LLMError.streamCut("the server closed the stream before the reply finished") }
        }
    }

    struct Chunk: Decodable {
        struct Choice: Decodable {
            struct Delta: Decodable {
                let content: String?
                let tool_calls: [Completion.Call]?
            }
            let delta: Delta?
            let finish_reason: String?
        }
        let choices: [Choice]?
        let usage: WireUsage?
    }

    static func parseChunk(_ data: String) throws(LLMError) -> [ChatDelta] {
        guard let chunk = try? JSONDecoder().decode(Chunk.self, from: Data(data.utf8)) else {
            throw .invalidOutput("a streamed chunk is not JSON")
        }
        var out: [ChatDelta] = []
        for choice in chunk.choices ?? [] {
            if let text = choice.delta?.content, !text.isEmpty { out.append(.text(text)) }
            for (position, call) in (choice.delta?.tool_calls ?? []).enumerated() {
                out.append(.toolCall(index: call.index ?? position, id: call.id, name: call.function?.name,
                                     arguments: call.function?.arguments ?? ""))
            }
            if let reason = finishReason(choice.finish_reason) { out.append(.finish(reason)) }
        }
        if let usage = chunk.usage { out.append(.usage(usage.usage)) }
        return out
    }
}
