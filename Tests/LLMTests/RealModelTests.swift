import AgentGraph
import Foundation
import Testing
@testable import LLM

/// The clients against a real model: SmolLM2-135M on llama.cpp's server
/// (`scripts/local-model`), when `PARLEY_TEST_MODEL_URL` points at it (`scripts/test` does).
enum LocalModel {
    static var url: String? { ProcessInfo.processInfo.environment["PARLEY_TEST_MODEL_URL"].flatMap { $0.isEmpty ? nil : $0 } }
}

@Suite("A real local model", .enabled(if: LocalModel.url != nil), .serialized)
struct RealModelTests {
    /// The client as Parley uses it: with retries, since llama.cpp's server may close a pooled
    /// keep-alive connection just as the next request goes out on it.
    static var model: RetryingModel {
        RetryingModel(OpenAICompatibleModel(.init(baseURL: LocalModel.url ?? "", model: "SmolLM2-135M-Instruct", timeout: .seconds(120))),
                      maxAttempts: 3, baseDelay: .milliseconds(50))
    }

    @Test("a completion answers with text, a finish reason and token counts")
    func complete() async throws {
        let reply = try await Self.model.complete(ChatRequest(messages: [.user("Say hello.")], temperature: 0, maxTokens: 24))
        #expect(!reply.message.content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        #expect([FinishReason.stop, .length].contains(reply.finishReason))
        #expect(reply.usage.promptTokens > 0)
        #expect(reply.usage.completionTokens > 0)
    }

    @Test("a stream arrives in several text deltas, then usage and a finish; a small max_tokens ends it with `length`")
    func stream() async throws {
        var pieces = 0
        var assembler = ReplyAssembler()
        for try await delta in Self.model.stream(ChatRequest(messages: [.user("Count from one to twenty in words.")], temperature: 0, maxTokens: 12)) {
            if case .text = delta { pieces += 1 }
            assembler.add(delta)
        }
        let reply = try assembler.response(model: "SmolLM2")
        #expect(pieces > 1, "the reply came in \(pieces) piece(s)")
        #expect(reply.finishReason == .length)
        #expect(reply.usage.completionTokens == 12)
    }

    @Test("through constrained JSON, the tiny model makes a well-formed tool call with the arguments the schema asks for")
    func toolCall() async throws {
        let weather = ToolDefinition(name: "weather", description: "The weather in a city.",
                                     parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])
        let model = JSONToolCallingModel(Self.model)
        let reply = try await model.complete(ChatRequest(messages: [.user("What is the weather in Oslo?")], tools: [weather],
                                                         toolChoice: .required, temperature: 0, maxTokens: 64))
        let call = try #require(reply.message.toolCalls.first)
        #expect(call.name == "weather")
        guard case .string(let city)? = try call.decodeArguments()["city"] else {
            Issue.record("no city in \(call.arguments)")
            return
        }
        #expect(!city.isEmpty)
    }

    @Test("structured output follows its schema")
    func structuredOutput() async throws {
        let format = ResponseFormat(name: "verdict", schema: [
            "type": "object", "properties": ["spam": ["type": "boolean"], "reason": ["type": "string"]], "required": ["spam", "reason"],
        ])
        let reply = try await Self.model.complete(ChatRequest(messages: [.user("Is 'WIN A FREE PRIZE NOW!!!' spam?")],
                                                              responseFormat: format, temperature: 0, maxTokens: 80))
        let verdict = try JSONDecoder().decode(JSONValue.self, from: Data(reply.message.content.utf8))
        guard case .bool? = verdict["spam"], case .string? = verdict["reason"] else {
            Issue.record("not the asked-for shape: \(reply.message.content)")
            return
        }
    }
}

extension RealModelTests {
    @Test("a prompt longer than the model's context is `contextTooLong`, streamed or not, with the server's own words")
    func contextTooLong() async throws {
        // llama.cpp gives each of scripts/local-model's two slots 2,048 tokens.
        let request = ChatRequest(messages: [.user(String(repeating: "word ", count: 6000))], maxTokens: 4)
        do throws(LLMError) {
            _ = try await Self.model.complete(request)
            Issue.record("a 6,000-token prompt was answered")
        } catch {
            guard case .contextTooLong(let detail) = error else {
                Issue.record("expected contextTooLong, got \(error)")
                return
            }
            #expect(detail.contains("context"))
        }
        var streamed: (any Error)?
        do {
            for try await _ in Self.model.stream(request) {}
        } catch {
            streamed = error
        }
        guard case .contextTooLong? = streamed as? LLMError else {
            Issue.record("expected contextTooLong from the stream, got \(String(describing: streamed))")
            return
        }
    }
}
