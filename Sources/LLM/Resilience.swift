import Foundation
import Synchronization

// Resilience around any model, as wrappers that compose:
//
//     let model = RetryingModel(TimeoutModel(CircuitBreakerModel(OpenAICompatibleModel(…))))
//
// Streams can only be retried, timed out or handed to a fallback before their first delta:
// once text has reached the caller, starting over would repeat it.

/// How a wrapper waits (real sleep in production, recorded in tests) and picks jitter.
public struct ResilienceEnvironment: Sendable {
    public var sleep: @Sendable (Duration) async throws -> Void
    public var random: @Sendable () -> Double
    public var now: @Sendable () -> Date

    public init(sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.sleep = sleep
        self.random = random
        self.now = now
    }

    public static let live = ResilienceEnvironment()
}

extension AsyncThrowingStream where Element == ChatDelta, Failure == any Error {
    /// A stream that runs `body`, which yields into it; cancelling the consumer cancels `body`.
    static func running(_ body: @escaping @Sendable (Continuation) async throws -> Void) -> Self {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await body(continuation)
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

func llmError(_ error: any Error) -> LLMError {
    if let error = error as? LLMError { return error }
    if error is CancellationError { return .timedOut("cancelled") }
    return .unavailable(String(describing: error))
}

/// A flag several tasks share.
final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

// MARK: Timeouts

/// Gives up on a reply whose first delta takes longer than `firstToken`, or that takes
/// longer than `total` in all (`.timedOut`). Connecting is the client's own timeout.
public struct TimeoutModel: ChatModel {
    public let base: any ChatModel
    public var firstToken: Duration
    public var total: Duration
    /// Its `sleep` times the deadlines.
    public var environment: ResilienceEnvironment

    public init(_ base: any ChatModel, firstToken: Duration = .seconds(30), total: Duration = .seconds(300),
                environment: ResilienceEnvironment = .live) {
        self.base = base
        self.firstToken = firstToken
        self.total = total
        self.environment = environment
    }

    public func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse {
        try await collect(request, model: "timeout")
    }

    public func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error> {
        let base = self.base, firstToken = self.firstToken, total = self.total, sleep = environment.sleep
        return .running { continuation in
            let started = Flag()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await delta in base.stream(request) {
                        started.set()
                        continuation.yield(delta)
                    }
                }
                group.addTask {
                    if firstToken < total {
                        try await sleep(firstToken)
                        if !started.isSet { throw LLMError.timedOut("no first token within \(firstToken)") }
                        try await sleep(total - firstToken)
                    } else {
                        try await sleep(total)
                    }
                    throw LLMError.timedOut("the reply took longer than \(total)")
                }
                // The first to finish decides: the reply, or a deadline.
                try await group.next()
                group.cancelAll()
            }
        }
    }
}

// MARK: Retry

/// Tries again after a retryable failure (rate limited, unavailable, stream cut, timed out),
/// waiting `base · 2^(attempt-1)` with full jitter, at most `maxDelay`, or what the provider's
/// `Retry-After` asks when it asks longer. A stream is retried only before its first delta.
public struct RetryingModel: ChatModel {
    public let base: any ChatModel
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    public var environment: ResilienceEnvironment

    public init(_ base: any ChatModel, maxAttempts: Int = 3, baseDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(30),
                environment: ResilienceEnvironment = .live) {
        self.base = base
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.environment = environment
    }

    /// The wait before attempt `attempt + 1`.
    func delay(after attempt: Int, error: LLMError) -> Duration {
        let exponential = min(maxDelay, baseDelay * (1 << min(attempt - 1, 20)))
        let jittered = exponential * environment.random()
        if case .rateLimited(let retryAfter?) = error {
            return max(jittered, min(maxDelay, .milliseconds(Int64(retryAfter * 1000))))
        }
        return jittered
    }

    public func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse {
        try await collect(request, model: "retrying")
    }

    public func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error> {
        let model = self
        return .running { continuation in
            var attempt = 1
            while true {
                var yielded = false
                do {
                    for try await delta in model.base.stream(request) {
                        yielded = true
                        continuation.yield(delta)
                    }
                    return
                } catch {
                    let failure = llmError(error)
                    guard !yielded, failure.isRetryable, attempt < model.maxAttempts, !Task.isCancelled else { throw failure }
                    try await model.environment.sleep(model.delay(after: attempt, error: failure))
                    attempt += 1
                }
            }
        }
    }
}

// MARK: Circuit breaker

/// Stops calling a model that keeps failing: after `threshold` retryable failures in a row
/// the circuit opens and requests fail at once with `.unavailable` for `coolDown`; then one
/// request is let through, and its success closes the circuit again.
public final class CircuitBreakerModel: ChatModel {
    public enum State: Sendable, Equatable { case closed, open(until: Date), halfOpen }

    public let base: any ChatModel
    public let threshold: Int
    public let coolDown: TimeInterval
    private let environment: ResilienceEnvironment
    private let state = Mutex<(state: State, failures: Int)>((.closed, 0))

    public init(_ base: any ChatModel, threshold: Int = 5, coolDown: Duration = .seconds(30), environment: ResilienceEnvironment = .live) {
        self.base = base
        self.threshold = max(1, threshold)
        self.coolDown = TimeInterval(coolDown.components.seconds) + TimeInterval(coolDown.components.attoseconds) / 1e18
        self.environment = environment
    }

    public var current: State { state.withLock { $0.state } }

    /// Whether a request may go through now (moving an expired open circuit to half-open).
    private func admit() -> Bool {
        let now = environment.now()
        return state.withLock { state in
            switch state.state {
            case .closed: return true
            case .halfOpen: return false
            case .open(let until):
                guard now >= until else { return false }
                state.state = .halfOpen
                return true
            }
        }
    }

    private func record(success: Bool) {
        let now = environment.now()
        state.withLock { state in
            if success {
                state = (.closed, 0)
                return
            }
            state.failures += 1
            if state.state == .halfOpen || state.failures >= threshold {
                state.state = .open(until: now.addingTimeInterval(coolDown))
            }
        }
    }

    public func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse {
        try await collect(request, model: "circuit-breaker")
    }

    public func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error> {
        .running { [self] continuation in
            guard admit() else { throw LLMError.unavailable("the circuit is open after repeated failures") }
            do {
                for try await delta in base.stream(request) { continuation.yield(delta) }
                record(success: true)
            } catch {
                let failure = llmError(error)
                // Only the provider's trouble counts, not a bad request of the caller's.
                if failure.isRetryable { record(success: false) } else { record(success: true) }
                throw failure
            }
        }
    }
}

// MARK: Fallback

/// Asks the next model when one fails with a retryable error (or authentication: a key
/// that stopped working) before its first delta.
public struct FallbackModel: ChatModel {
    public let models: [any ChatModel]

    public init(_ models: [any ChatModel]) {
        self.models = models
    }

    public func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse {
        try await collect(request, model: "fallback")
    }

    public func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error> {
        let models = self.models
        return .running { continuation in
            var last: LLMError = .unavailable("no model is configured")
            for model in models {
                var yielded = false
                do {
                    for try await delta in model.stream(request) {
                        yielded = true
                        continuation.yield(delta)
                    }
                    return
                } catch {
                    let failure = llmError(error)
                    var moveOn = failure.isRetryable
                    if case .authentication = failure { moveOn = true }
                    guard !yielded, moveOn, !Task.isCancelled else { throw failure }
                    last = failure
                }
            }
            throw last
        }
    }
}
