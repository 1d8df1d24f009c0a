import Foundation
import Synchronization

/// A model that plays back a script: for tests, benchmarks and the offline demo. Each
/// request takes the next step; text is streamed a word at a time.
public final class ScriptedModel: ChatModel {
    public enum Step: Sendable, Hashable {
        /// Answers with text.
        case reply(String)
        /// Calls tools (with optional text before the calls).
        case toolCalls([ToolCall], text: String = "")
        /// Fails with an error before producing anything.
        case failure(LLMError)
        /// Streams this text, then the connection "drops" (`.streamCut`).
        case cut(after: String)
    }

    public let name: String
    private let state: Mutex<(steps: [Step], requests: [ChatRequest])>
    private let tokenDelay: Duration

    /// `tokenDelay` is slept before each streamed word (none by default).
    public init(_ steps: [Step], name: String = "scripted", tokenDelay: Duration = .zero) {
        self.state = Mutex((steps, []))
        self.name = name
        self.tokenDelay = tokenDelay
    }

    /// Every request received so far, oldest first.
    public var requests: [ChatRequest] { state.withLock { $0.requests } }

    /// Steps not yet played.
    public var remaining: Int { state.withLock { $0.steps.count } }

    /// Adds steps at the end of the script.
    public func append(_ steps: Step...) {
        state.withLock { $0.steps.append(contentsOf: steps) }
    }

    public func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse {
        try await collect(request, model: name)
    }

    public func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error> {
        let step = state.withLock { state -> Step? in
            state.requests.append(request)
            return state.steps.isEmpty ? nil : state.steps.removeFirst()
        }
        let delay = tokenDelay
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    guard let step else { throw LLMError.unavailable("the script has no step left") }
                    func words(_ text: String) async throws {
                        for word in Self.words(text) {
                            if delay > .zero { try await Task.sleep(for: delay) }
                            try Task.checkCancellation()
                            continuation.yield(.text(word))
                        }
                    }
                    let prompt = request.messages.reduce(0) { $0 + Self.words($1.content).count }
                    switch step {
                    case .reply(let text):
                        try await words(text)
                        continuation.yield(.usage(Usage(promptTokens: prompt, completionTokens: Self.words(text).count)))
                        continuation.yield(.finish(.stop))
                    case .toolCalls(let calls, let text):
                        try await words(text)
                        for (index, call) in calls.enumerated() {
                            continuation.yield(.toolCall(index: index, id: call.id, name: call.name, arguments: call.arguments))
                        }
                        continuation.yield(.usage(Usage(promptTokens: prompt, completionTokens: Self.words(text).count + calls.count)))
                        continuation.yield(.finish(.toolCalls))
                    case .failure(let error):
                        throw error
                    case .cut(let text):
                        try await words(text)
                        throw LLMError.streamCut("the scripted connection dropped")
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Words with the spaces that follow them, so joining them gives the text back.
    public static func words(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        for character in text {
            current.append(character)
            if character == " " || character == "\n" {
                out.append(current)
                current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}
