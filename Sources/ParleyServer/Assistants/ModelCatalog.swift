import AgentGraph
import Foundation
import LLM
import NIOConcurrencyHelpers

/// Turns an assistant's provider and model names into a `ChatModel` with resilience around
/// it: a time limit to the first token and for the whole reply, retries with back-off that
/// honour `Retry-After`, a circuit breaker per provider and model (shared by every run on
/// this node), the provider's fallback, and tool calls through constrained JSON for models
/// configured that way.
final class ModelCatalog: Sendable {
    struct Resolved: Sendable {
        let model: any ChatModel
        let provider: String
        let price: ModelProvider.Price?
    }

    private let providers: [String: ModelProvider]
    private let registered = NIOLockedValueBox<[String: any ChatModel]>([:])
    private let breakers = NIOLockedValueBox<[String: CircuitBreakerModel]>([:])

    init(providers: [ModelProvider]) {
        self.providers = Dictionary(providers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The names assistants may use.
    var names: [String] {
        Array(Set(providers.keys).union(registered.withLockedValue { Set($0.keys) })).sorted()
    }

    var isEmpty: Bool { names.isEmpty }

    /// Installs a complete model under a provider name (used as it is, without the wrappers):
    /// for tests and for applications that embed Parley with a model of their own.
    func register(_ name: String, _ model: any ChatModel) {
        registered.withLockedValue { $0[name] = model }
    }

    func resolve(provider name: String, model: String, toolCalling: Assistant.ToolCalling) -> Resolved? {
        if let model = registered.withLockedValue({ $0[name] }) {
            return Resolved(model: toolCalling == .json ? JSONToolCallingModel(model) : model, provider: name, price: nil)
        }
        guard let provider = providers[name] else { return nil }
        var chain: any ChatModel = resilient(provider, model: model)
        if let fallbackName = provider.fallback, let fallback = providers[fallbackName] {
            chain = FallbackModel([chain, resilient(fallback, model: provider.fallbackModel ?? model)])
        }
        if toolCalling == .json { chain = JSONToolCallingModel(chain) }
        return Resolved(model: chain, provider: name, price: provider.price ?? Self.knownPrices[model])
    }

    private func resilient(_ provider: ModelProvider, model: String) -> any ChatModel {
        let base: any ChatModel
        switch provider.kind {
        case .openai:
            base = OpenAICompatibleModel(.init(baseURL: provider.baseURL, model: model, apiKey: provider.apiKey, timeout: provider.totalTimeout))
        case .anthropic:
            base = AnthropicModel(.init(baseURL: provider.baseURL, model: model, apiKey: provider.apiKey, timeout: provider.totalTimeout))
        case .scripted:
            return ScriptedProviderModel(script: provider.script, wordDelay: provider.wordDelay)
        }
        let environment = ResilienceEnvironment(sleep: LoopTimer.sleep)
        let timed = TimeoutModel(base, firstToken: provider.firstTokenTimeout, total: provider.totalTimeout, environment: environment)
        let retried = RetryingModel(timed, maxAttempts: 3, environment: environment)
        let key = provider.name + "/" + model
        return breakers.withLockedValue { breakers in
            if let breaker = breakers[key] { return breaker }
            let breaker = CircuitBreakerModel(retried, threshold: 5, coolDown: .seconds(30))
            breakers[key] = breaker
            return breaker
        }
    }

    /// List prices (US dollars per million tokens) of common hosted models, used when a
    /// provider sets no `PARLEY_LLM_<NAME>_PRICE`. Local models cost nothing here.
    static let knownPrices: [String: ModelProvider.Price] = [
        "gpt-4o": .init(input: 2.50, output: 10.00),
        "gpt-4o-mini": .init(input: 0.15, output: 0.60),
        "gpt-4.1": .init(input: 2.00, output: 8.00),
        "gpt-4.1-mini": .init(input: 0.40, output: 1.60),
        "gpt-4.1-nano": .init(input: 0.10, output: 0.40),
        "claude-3-5-haiku-latest": .init(input: 0.80, output: 4.00),
        "claude-sonnet-4-0": .init(input: 3.00, output: 15.00),
    ]

    static func cost(_ usage: Usage, price: ModelProvider.Price?) -> Double {
        guard let price else { return 0 }
        return (Double(usage.promptTokens) * price.input + Double(usage.completionTokens) * price.output) / 1_000_000
    }
}

/// The `scripted` provider: calls the first offered tool once (with `{"limit": 5}` for
/// `recent_messages`, `{}` otherwise), then streams `script` a word at a time. It keeps no
/// state between requests, so any number of runs can share it.
struct ScriptedProviderModel: ChatModel {
    let script: String
    var wordDelay: Duration = .zero

    func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse {
        try await collect(request, model: "scripted")
    }

    func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error> {
        let calledTools = request.messages.contains { $0.role == .tool }
        let words = ScriptedModel.words(script)
        let delay = wordDelay
        guard delay > .zero, calledTools || request.tools.isEmpty || request.toolChoice == .none else {
            return immediate(request, calledTools: calledTools, words: words)
        }
        // Paced: one word at a time, so a client sees the reply being written.
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for word in words {
                        try await Task.sleep(for: delay)
                        continuation.yield(.text(word))
                    }
                    continuation.yield(.usage(Usage(promptTokens: request.messages.count * 16, completionTokens: words.count)))
                    continuation.yield(.finish(.stop))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    private func immediate(_ request: ChatRequest, calledTools: Bool, words: [String]) -> AsyncThrowingStream<ChatDelta, any Error> {
        AsyncThrowingStream { continuation in
            if !calledTools, let tool = request.tools.first, request.toolChoice != .none {
                let arguments = tool.name == "recent_messages" ? #"{"limit":5}"# : "{}"
                continuation.yield(.toolCall(index: 0, id: "call_" + String(UInt32.random(in: .min ... .max), radix: 16), name: tool.name, arguments: arguments))
                continuation.yield(.usage(Usage(promptTokens: request.messages.count * 16, completionTokens: 8)))
                continuation.yield(.finish(.toolCalls))
            } else {
                for word in words { continuation.yield(.text(word)) }
                continuation.yield(.usage(Usage(promptTokens: request.messages.count * 16, completionTokens: words.count)))
                continuation.yield(.finish(.stop))
            }
            continuation.finish()
        }
    }
}
