import AgentGraph
import AsyncHTTPClient
import Foundation
import Testing
@testable import LLM

/// The OpenAI-compatible client against a real HTTP server on 127.0.0.1.
@Suite("OpenAI-compatible provider", .serialized)
struct OpenAICompatibleModelTests {
    static let key = "sk-test-0123456789abcdef-secret"

    static func withProvider(_ body: (FakeProvider, OpenAICompatibleModel) async throws -> Void) async throws {
        try await FakeProvider.with({ OpenAICompatibleModel(.init(baseURL: $0.baseURL, model: "tiny-1", apiKey: key)) }, body)
    }

    static let weather = ToolDefinition(name: "weather", description: "The weather in a city.",
                                        parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])

    @Test("a completion sends the model, messages, tools, tool choice, structured output and the key, and reads text, tool calls and usage")
    func complete() async throws {
        try await Self.withProvider { provider, model in
            provider.answer(.json(.ok, """
                {"model":"tiny-1-0301","choices":[{"message":{"role":"assistant","content":"Let me look.",
                 "tool_calls":[{"id":"call_7","type":"function","function":{"name":"weather","arguments":"{\\"city\\":\\"Oslo\\"}"}}]},
                 "finish_reason":"tool_calls"}],
                 "usage":{"prompt_tokens":31,"completion_tokens":9,"prompt_tokens_details":{"cached_tokens":16}}}
                """))
            let request = ChatRequest(
                messages: [.system("Be brief."), .user("Weather in Oslo?"),
                           .assistant("", toolCalls: [ToolCall(id: "call_1", name: "weather", arguments: #"{"city":"Bergen"}"#)]),
                           .tool("rain", callID: "call_1")],
                tools: [Self.weather], toolChoice: .tool("weather"),
                responseFormat: ResponseFormat(name: "answer", schema: ["type": "object"]), temperature: 0, maxTokens: 64)
            let reply = try await model.complete(request)
            #expect(reply.message.content == "Let me look.")
            #expect(reply.message.toolCalls == [ToolCall(id: "call_7", name: "weather", arguments: #"{"city":"Oslo"}"#)])
            #expect(try reply.message.toolCalls[0].decodeArguments()["city"] == "Oslo")
            #expect(reply.finishReason == .toolCalls)
            #expect(reply.usage == Usage(promptTokens: 31, completionTokens: 9, cachedTokens: 16))
            #expect(reply.model == "tiny-1-0301")

            let sent = try #require(provider.requests.first)
            #expect(sent.headers.first(name: "Authorization") == "Bearer \(Self.key)")
            #expect(sent.body["model"] == "tiny-1")
            #expect(sent.body["stream"] == false)
            guard case .array(let messages)? = sent.body["messages"] else { Issue.record("no messages"); return }
            #expect(messages.map { $0["role"] } == ["system", "user", "assistant", "tool"])
            #expect(messages[3]["tool_call_id"] == "call_1")
            #expect(messages[2]["tool_calls"]?.jsonText.contains("Bergen") == true)
            #expect(sent.body["tools"]?.jsonText.contains(#""name":"weather""#) == true)
            #expect(sent.body["tool_choice"] == ["type": "function", "function": ["name": "weather"]])
            #expect(sent.body["response_format"]?["type"] == "json_schema")
            #expect(sent.body["temperature"] == 0)
            #expect(sent.body["max_tokens"] == 64)
        }
    }

    @Test("a stream yields text, tool-call fragments, usage and the finish reason; assembled, they make the whole reply")
    func stream() async throws {
        try await Self.withProvider { provider, model in
            provider.answer(.events([
                #"{"choices":[{"delta":{"role":"assistant","content":"Hel"}}]}"#,
                #"{"choices":[{"delta":{"content":"lo"}}]}"#,
                #"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"ci"}}]}}]}"#,
                #"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Oslo\"}"}}]}}]}"#,
                #"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
                #"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7}}"#,
            ], done: true))
            var deltas: [ChatDelta] = []
            var assembler = ReplyAssembler()
            for try await delta in model.stream(ChatRequest(messages: [.user("hi")], tools: [Self.weather])) {
                deltas.append(delta)
                assembler.add(delta)
            }
            #expect(deltas.first == .text("Hel"))
            #expect(deltas.contains(.usage(Usage(promptTokens: 12, completionTokens: 7))))
            let reply = try assembler.response(model: "tiny-1")
            #expect(reply.message.content == "Hello")
            #expect(reply.message.toolCalls == [ToolCall(id: "call_1", name: "weather", arguments: #"{"city":"Oslo"}"#)])
            #expect(reply.finishReason == .toolCalls)
            #expect(provider.requests.first?.body["stream"] == true)
            #expect(provider.requests.first?.body["stream_options"] == ["include_usage": true])
        }
    }

    @Test("a stream that stops before its reply finished is a stream cut, after the text that did arrive")
    func streamCut() async throws {
        try await Self.withProvider { provider, model in
            provider.answer(.events([#"{"choices":[{"delta":{"content":"Half a "}}]}"#], done: false))
            var text = ""
            let error = await #expect(throws: LLMError.self) {
                for try await delta in model.stream(ChatRequest(messages: [.user("hi")])) {
                    if case .text(let piece) = delta { text += piece }
                }
            }
            #expect(text == "Half a ")
            guard case .streamCut? = error else {
                Issue.record("expected streamCut, got \(String(describing: error))")
                return
            }
            #expect(error?.isRetryable == true)
        }
    }

    @Test("errors are typed: 429 with Retry-After, 401, a context too long (OpenAI's and llama.cpp's), another 400, a 500, malformed output")
    func errors() async throws {
        try await Self.withProvider { provider, model in
            provider.answer(
                .json(.tooManyRequests, #"{"error":{"message":"slow down"}}"#, headers: [("Retry-After", "7")]),
                .json(.unauthorized, #"{"error":{"message":"Incorrect API key provided"}}"#),
                .json(.badRequest, #"{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#),
                .json(.badRequest, #"{"error":{"message":"unknown model"}}"#),
                // llama.cpp's body, as its server answers a prompt longer than a slot's context.
                .json(.badRequest, #"{"error":{"code":400,"message":"request (6031 tokens) exceeds the available context size (2048 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":6031,"n_ctx":2048}}"#),
                .json(.serviceUnavailable, #"{"error":{"message":"Loading model","type":"unavailable_error","code":503}}"#),
                .json(.internalServerError, #"{"error":{"message":"overloaded"}}"#),
                .json(.ok, #"{"choices":"nope"}"#),
                .json(.tooManyRequests, "{}", headers: [("retry-after-ms", "1500")]))
            let request = ChatRequest(messages: [.user("hi")])
            var errors: [LLMError] = []
            for _ in 0..<9 {
                do throws(LLMError) {
                    _ = try await model.complete(request)
                    Issue.record("expected an error")
                } catch {
                    errors.append(error)
                }
            }
            #expect(errors == [
                .rateLimited(retryAfter: 7), .authentication("Incorrect API key provided"),
                .contextTooLong("This model's maximum context length is 8192 tokens"), .badRequest("unknown model"),
                .contextTooLong("request (6031 tokens) exceeds the available context size (2048 tokens), try increasing it"),
                .unavailable("503: Loading model"), .unavailable("500: overloaded"), .invalidOutput("the reply is not a chat completion"), .rateLimited(retryAfter: 1.5),
            ])
            #expect(errors.map(\.isRetryable) == [true, false, false, false, false, true, true, false, true])
            for error in errors { #expect(!error.description.contains(Self.key)) }
        }
    }

    @Test("a streamed request refused with 429 fails the stream with the same typed error")
    func streamRefused() async throws {
        try await Self.withProvider { provider, model in
            provider.answer(.json(.tooManyRequests, "{}", headers: [("Retry-After", "2")]))
            let error = await #expect(throws: LLMError.self) {
                for try await _ in model.stream(ChatRequest(messages: [.user("hi")])) {}
            }
            #expect(error == .rateLimited(retryAfter: 2))
        }
    }

    @Test("nobody listening is a retryable error once the connect timeout passes; the API key never appears in the configuration's description or an error")
    func unreachableAndSecret() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton,
                                configuration: HTTPClient.Configuration(timeout: .init(connect: .milliseconds(500))))
        let model = OpenAICompatibleModel(.init(baseURL: "http://127.0.0.1:1/v1", model: "tiny-1", apiKey: Self.key), client: client)
        let error = await #expect(throws: LLMError.self) { _ = try await model.complete(ChatRequest(messages: [.user("hi")])) }
        #expect(error?.isRetryable == true, "\(String(describing: error))")
        #expect(error?.description.contains(Self.key) == false)
        #expect(!model.configuration.description.contains(Self.key))
        #expect(!String(describing: model.configuration).contains(Self.key))
        #expect(!String(reflecting: model.configuration).contains(Self.key))
        try await client.shutdown()
    }
}
