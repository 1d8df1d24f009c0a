import AgentGraph
import Foundation
import Testing
import Vapor
@testable import LLM

/// Anthropic's Messages API client against a real HTTP server on 127.0.0.1.
@Suite("Anthropic provider", .serialized)
struct AnthropicModelTests {
    static let key = "sk-ant-test-secret-42"

    static func withProvider(_ body: (FakeProvider, AnthropicModel) async throws -> Void) async throws {
        try await FakeProvider.with({ AnthropicModel(.init(baseURL: $0.root, model: "claude-test", apiKey: key)) }, body)
    }

    @Test("a completion sends system apart, content blocks, tool results as a user turn, tools and the key; it reads text, tool use and usage")
    func complete() async throws {
        try await Self.withProvider { provider, model in
            provider.answer(.json(.ok, """
                {"id":"msg_1","model":"claude-test-1","content":[{"type":"text","text":"Checking."},
                 {"type":"tool_use","id":"toolu_9","name":"weather","input":{"city":"Oslo"}}],
                 "stop_reason":"tool_use","usage":{"input_tokens":40,"output_tokens":12,"cache_read_input_tokens":30}}
                """))
            let weather = ToolDefinition(name: "weather", description: "Weather.", parameters: ["type": "object"])
            let request = ChatRequest(messages: [
                .system("Be brief."), .user("Oslo and Bergen?"),
                .assistant("", toolCalls: [ToolCall(id: "toolu_1", name: "weather", arguments: #"{"city":"Bergen"}"#),
                                           ToolCall(id: "toolu_2", name: "weather", arguments: #"{"city":"Tromsø"}"#)]),
                .tool("rain", callID: "toolu_1"), .tool("snow", callID: "toolu_2"),
            ], tools: [weather], toolChoice: .required)
            let reply = try await model.complete(request)
            #expect(reply.message.content == "Checking.")
            #expect(reply.message.toolCalls == [ToolCall(id: "toolu_9", name: "weather", arguments: #"{"city":"Oslo"}"#)])
            #expect(reply.finishReason == .toolCalls)
            #expect(reply.usage == Usage(promptTokens: 40, completionTokens: 12, cachedTokens: 30))

            let sent = try #require(provider.requests.first)
            #expect(sent.headers.first(name: "x-api-key") == Self.key)
            #expect(sent.headers.first(name: "anthropic-version") == AnthropicModel.version)
            #expect(sent.body["system"] == "Be brief.")
            #expect(sent.body["max_tokens"] == 1024)
            #expect(sent.body["tool_choice"] == ["type": "any"])
            #expect(sent.body["tools"]?.jsonText.contains("input_schema") == true)
            guard case .array(let turns)? = sent.body["messages"] else { Issue.record("no messages"); return }
            #expect(turns.map { $0["role"] } == ["user", "assistant", "user"], "two tool results share one user turn")
            #expect(turns[1]["content"]?.jsonText.contains(#""input":{"city":"Bergen"}"#) == true)
            guard case .array(let results)? = turns[2]["content"] else { Issue.record("no results"); return }
            #expect(results.map { $0["tool_use_id"] } == ["toolu_1", "toolu_2"])
        }
    }

    @Test("a stream yields text, tool input in pieces, usage from the start and the end, and the stop reason")
    func stream() async throws {
        try await Self.withProvider { provider, model in
            provider.answer(.events([
                #"{"type":"message_start","message":{"model":"claude-test","usage":{"input_tokens":25,"cache_read_input_tokens":5}}}"#,
                #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}}"#,
                #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"check."}}"#,
                #"{"type":"content_block_stop","index":0}"#,
                #"{"type":"ping"}"#,
                #"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_3","name":"weather","input":{}}}"#,
                #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}"#,
                #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Oslo\"}"}}"#,
                #"{"type":"content_block_stop","index":1}"#,
                #"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":17}}"#,
                #"{"type":"message_stop"}"#,
            ], done: false))
            var assembler = ReplyAssembler()
            for try await delta in model.stream(ChatRequest(messages: [.user("weather?")])) { assembler.add(delta) }
            let reply = try assembler.response(model: "claude-test")
            #expect(reply.message.content == "Let me check.")
            #expect(reply.message.toolCalls == [ToolCall(id: "toolu_3", name: "weather", arguments: #"{"city":"Oslo"}"#)])
            #expect(reply.usage == Usage(promptTokens: 25, completionTokens: 17, cachedTokens: 5))
            #expect(reply.finishReason == .toolCalls)
            #expect(provider.requests.first?.body["stream"] == true)
        }
    }

    @Test("structured output is a forced tool whose input comes back as the reply's JSON text")
    func structuredOutput() async throws {
        try await Self.withProvider { provider, model in
            provider.answer(.json(.ok, """
                {"content":[{"type":"tool_use","id":"toolu_1","name":"verdict","input":{"spam":false}}],"stop_reason":"tool_use",
                 "usage":{"input_tokens":3,"output_tokens":4}}
                """))
            let format = ResponseFormat(name: "verdict", schema: ["type": "object", "properties": ["spam": ["type": "boolean"]]])
            let reply = try await model.complete(ChatRequest(messages: [.user("Is this spam?")], responseFormat: format))
            #expect(reply.message.content == #"{"spam":false}"#)
            #expect(reply.message.toolCalls.isEmpty)
            #expect(reply.finishReason == .stop)
            #expect(provider.requests.first?.body["tool_choice"] == ["type": "tool", "name": "verdict"])
        }
    }

    @Test("errors are typed: overloaded (529), a prompt too long, an error event mid-stream, a stream cut")
    func errors() async throws {
        try await Self.withProvider { provider, model in
            provider.answer(
                .json(HTTPStatusCode529.status, #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
                .json(.badRequest, #"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#),
                .events([#"{"type":"message_start","message":{"usage":{"input_tokens":1}}}"#,
                         #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#], done: false),
                .events([#"{"type":"message_start","message":{"usage":{"input_tokens":1}}}"#,
                         #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hal"}}"#], done: false))
            let request = ChatRequest(messages: [.user("hi")])
            await #expect(throws: LLMError.unavailable("529: Overloaded")) { _ = try await model.complete(request) }
            await #expect(throws: LLMError.contextTooLong("prompt is too long: 210000 tokens > 200000 maximum")) {
                _ = try await model.complete(request)
            }
            await #expect(throws: LLMError.unavailable("Overloaded")) { for try await _ in model.stream(request) {} }
            let cut = await #expect(throws: LLMError.self) { for try await _ in model.stream(request) {} }
            guard case .streamCut? = cut else {
                Issue.record("expected streamCut, got \(String(describing: cut))")
                return
            }
            #expect(!model.configuration.description.contains(Self.key))
        }
    }
}

enum HTTPStatusCode529 {
    static let status = Vapor.HTTPStatus(statusCode: 529, reasonPhrase: "Overloaded")
}
