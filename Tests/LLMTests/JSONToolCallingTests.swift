import AgentGraph
import Foundation
import Testing
@testable import LLM

@Suite("Tool calls through constrained JSON")
struct JSONToolCallingTests {
    static let weather = ToolDefinition(name: "weather", description: "The weather in a city.",
                                        parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])

    @Test("the model is asked for one JSON object under a schema, without native tools; its answer becomes a tool call or a reply")
    func roundTrip() async throws {
        let inner = ScriptedModel([
            .reply(#"{"tool":"weather","arguments":{"city":"Oslo"}}"#),
            .reply(#" {"reply":"Rain in Oslo."} "#),
        ])
        let model = JSONToolCallingModel(inner)
        let first = try await model.complete(ChatRequest(messages: [.user("Weather in Oslo?")], tools: [Self.weather]))
        let call = try #require(first.message.toolCalls.first)
        #expect(call.name == "weather")
        #expect(try call.decodeArguments() == ["city": "Oslo"])
        #expect(first.finishReason == .toolCalls)

        let sent = try #require(inner.requests.first)
        #expect(sent.tools.isEmpty)
        #expect(sent.responseFormat?.name == "tool_call")
        #expect(sent.responseFormat?.schema.jsonText.contains(#""const":"weather""#) == true)
        #expect(sent.messages.first?.role == .system)
        #expect(sent.messages.first?.content.contains("- {\"tool\":\"weather\"") == true)

        // The call and its result go back as plain turns.
        let second = try await model.complete(ChatRequest(
            messages: [.user("Weather in Oslo?"), .assistant("", toolCalls: [call]), .tool("rain", callID: call.id)],
            tools: [Self.weather]))
        #expect(second.message.content == "Rain in Oslo.")
        #expect(second.finishReason == .stop)
        let history = try #require(inner.requests.last).messages
        #expect(history.map(\.role) == [.system, .user, .assistant, .user])
        #expect(history[2].content == #"{"tool":"weather","arguments":{"city":"Oslo"}}"#)
        #expect(history[3].content.hasSuffix(": rain"))
    }

    @Test("a required tool leaves no reply option; text that is not the asked-for JSON, or an unknown tool, is invalid output")
    func invalid() async throws {
        let inner = ScriptedModel([.reply("Sure! The weather is nice."), .reply(#"{"tool":"launch","arguments":{}}"#), .reply(#"{"x":1}"#)])
        let model = JSONToolCallingModel(inner)
        let request = ChatRequest(messages: [.user("?")], tools: [Self.weather], toolChoice: .required)
        await #expect(throws: LLMError.invalidOutput("the model did not answer with a JSON object")) { _ = try await model.complete(request) }
        #expect(inner.requests.first?.responseFormat?.schema.jsonText.contains("reply") == false)
        await #expect(throws: LLMError.invalidOutput("the model called an unknown tool launch")) { _ = try await model.complete(request) }
        await #expect(throws: LLMError.invalidOutput("the model's JSON names neither a tool nor a reply")) { _ = try await model.complete(request) }
    }

    @Test("requests without tools stream through unchanged")
    func passThrough() async throws {
        let inner = ScriptedModel([.reply("plain words")])
        var text = ""
        for try await delta in JSONToolCallingModel(inner).stream(ChatRequest(messages: [.user("hi")])) {
            if case .text(let piece) = delta { text += piece }
        }
        #expect(text == "plain words")
        #expect(inner.requests.first?.responseFormat == nil)
    }
}
