import Foundation
import Testing
@testable import LLM

@Suite("Scripted model")
struct ScriptedModelTests {
    @Test("plays its script in order: a streamed reply word by word, tool calls, a failure, a cut stream; it records every request")
    func script() async throws {
        let call = ToolCall(id: "call_1", name: "search", arguments: #"{"q":"deploy"}"#)
        let model = ScriptedModel([
            .reply("Deploy at five."),
            .toolCalls([call], text: "Searching."),
            .failure(.rateLimited(retryAfter: 3)),
            .cut(after: "Half of"),
        ])
        var words: [String] = []
        for try await delta in model.stream(ChatRequest(messages: [.user("when?")])) {
            if case .text(let word) = delta { words.append(word) }
        }
        #expect(words == ["Deploy ", "at ", "five."])

        let tools = try await model.complete(ChatRequest(messages: [.user("search it")]))
        #expect(tools.message.toolCalls == [call])
        #expect(tools.message.content == "Searching.")
        #expect(tools.finishReason == .toolCalls)

        await #expect(throws: LLMError.rateLimited(retryAfter: 3)) { _ = try await model.complete(ChatRequest(messages: [])) }
        let cut = await #expect(throws: LLMError.self) { _ = try await model.complete(ChatRequest(messages: [])) }
        guard case .streamCut? = cut else {
            Issue.record("expected streamCut, got \(String(describing: cut))")
            return
        }
        await #expect(throws: LLMError.self) { _ = try await model.complete(ChatRequest(messages: [])) }
        #expect(model.requests.count == 5)
        #expect(model.requests.first?.messages == [.user("when?")])
        #expect(model.remaining == 0)
    }

    @Test("a reply assembled from deltas without a finish reason is a cut stream")
    func assemblerNeedsFinish() {
        var assembler = ReplyAssembler()
        assembler.add(.text("no end"))
        #expect(throws: LLMError.streamCut("the reply ended without a finish reason")) { try assembler.response(model: "m") }
        assembler.add(.finish(.stop))
        #expect((try? assembler.response(model: "m"))?.message.content == "no end")
    }

    @Test("tool arguments that are not JSON are invalid output")
    func badArguments() {
        #expect(throws: LLMError.self) { try ToolCall(id: "c", name: "t", arguments: "{oops").decodeArguments() }
    }
}
