/// A chat model: a provider's client, a scripted model for tests, or a wrapper that adds
/// resilience around another model.
public protocol ChatModel: Sendable {
    /// The whole reply at once.
    func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse
    /// The reply as it is produced: text and tool-call fragments, then usage and the finish
    /// reason. The stream throws `LLMError`.
    func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error>
}

extension ChatModel {
    /// Collects a stream into a whole reply (for models whose `complete` streams).
    public func collect(_ request: ChatRequest, model: String) async throws(LLMError) -> ChatResponse {
        var assembler = ReplyAssembler()
        do {
            for try await delta in stream(request) { assembler.add(delta) }
        } catch let error as LLMError {
            throw error
        } catch {
            throw .unavailable(String(describing: error))
        }
        return try assembler.response(model: model)
    }
}

/// Puts streamed deltas back together into a message.
public struct ReplyAssembler: Sendable {
    private var text = ""
    private var calls: [Int: (id: String, name: String, arguments: String)] = [:]
    private var usage = Usage()
    private var finish: FinishReason?

    public init() {}

    public mutating func add(_ delta: ChatDelta) {
        switch delta {
        case .text(let piece):
            text += piece
        case .toolCall(let index, let id, let name, let arguments):
            var call = calls[index] ?? ("", "", "")
            if let id, !id.isEmpty { call.id = id }
            if let name, !name.isEmpty { call.name += name }
            call.arguments += arguments
            calls[index] = call
        case .usage(let reported):
            usage = reported
        case .finish(let reason):
            finish = reason
        }
    }

    /// The reply so far; a stream that never said why it finished was cut.
    public func response(model: String) throws(LLMError) -> ChatResponse {
        guard let finish else { throw .streamCut("the reply ended without a finish reason") }
        let toolCalls = calls.sorted { $0.key < $1.key }.map { ToolCall(id: $0.value.id, name: $0.value.name, arguments: $0.value.arguments) }
        return ChatResponse(message: .assistant(text, toolCalls: toolCalls), finishReason: finish, usage: usage, model: model)
    }
}
