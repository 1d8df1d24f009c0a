import Foundation
import Synchronization
import Testing
@testable import LLM

/// Waits recorded instead of slept, a fixed jitter and a clock a test moves.
final class TestEnvironment: Sendable {
    private let state = Mutex<(now: Date, sleeps: [Duration])>((Date(timeIntervalSince1970: 1_800_000_000), []))
    var sleeps: [Duration] { state.withLock { $0.sleeps } }
    func advance(by seconds: TimeInterval) { state.withLock { $0.now = $0.now.addingTimeInterval(seconds) } }

    var environment: ResilienceEnvironment {
        ResilienceEnvironment(sleep: { [self] delay in state.withLock { $0.sleeps.append(delay) } },
                              random: { 0.5 }, now: { [self] in state.withLock { $0.now } })
    }
}

let hello = ChatRequest(messages: [.user("hello")])

@Suite("Resilience wrappers")
struct ResilienceTests {
    @Test("retry waits with exponential back-off and jitter, honours a longer Retry-After, and stops at a non-retryable error")
    func retry() async throws {
        let clock = TestEnvironment()
        let flaky = ScriptedModel([.failure(.unavailable("500")), .failure(.rateLimited(retryAfter: 9)), .reply("third time")])
        let model = RetryingModel(flaky, maxAttempts: 3, baseDelay: .seconds(1), maxDelay: .seconds(30), environment: clock.environment)
        let reply = try await model.complete(hello)
        #expect(reply.message.content == "third time")
        // 1 s · 2^0 · 0.5 jitter; then Retry-After's 9 s beats 1 s · 2^1 · 0.5.
        #expect(clock.sleeps == [.milliseconds(500), .seconds(9)])

        let refused = ScriptedModel([.failure(.authentication("bad key")), .reply("never")])
        await #expect(throws: LLMError.authentication("bad key")) {
            _ = try await RetryingModel(refused, environment: clock.environment).complete(hello)
        }
        #expect(refused.remaining == 1, "a non-retryable error is not retried")

        let down = ScriptedModel([.failure(.unavailable("a")), .failure(.unavailable("b")), .failure(.unavailable("c")), .reply("late")])
        await #expect(throws: LLMError.unavailable("c")) {
            _ = try await RetryingModel(down, maxAttempts: 3, environment: clock.environment).complete(hello)
        }
    }

    @Test("a stream is not retried once it has yielded text (the caller would see it twice)")
    func noRetryAfterText() async throws {
        let model = RetryingModel(ScriptedModel([.cut(after: "Partial answer "), .reply("again")]), environment: TestEnvironment().environment)
        var text = ""
        await #expect(throws: LLMError.self) {
            for try await delta in model.stream(hello) { if case .text(let piece) = delta { text += piece } }
        }
        #expect(text == "Partial answer ")
    }

    @Test("a first token that does not come in time is a timeout, and so is a reply that runs past its total")
    func timeouts() async throws {
        let silent = TimeoutModel(ScriptedModel([.reply("slow")], tokenDelay: .seconds(3600)), firstToken: .milliseconds(50), total: .seconds(60))
        let first = await #expect(throws: LLMError.self) { _ = try await silent.complete(hello) }
        #expect(first == .timedOut("no first token within 0.05 seconds"))

        let long = TimeoutModel(ScriptedModel([.reply(String(repeating: "word ", count: 1000))], tokenDelay: .milliseconds(20)),
                                firstToken: .seconds(10), total: .milliseconds(200))
        // The first token comes in time (20 ms), the whole reply would take 20 s.
        let error = await #expect(throws: LLMError.self) { _ = try await long.complete(hello) }
        guard case .timedOut? = error else {
            Issue.record("expected timedOut, got \(String(describing: error))")
            return
        }
        let quick = TimeoutModel(ScriptedModel([.reply("in time")]), firstToken: .seconds(10), total: .seconds(10))
        #expect(try await quick.complete(hello).message.content == "in time")
    }

    @Test("the circuit opens after repeated failures, fails fast while open, lets one request through after the cool-down, and closes on its success")
    func circuitBreaker() async throws {
        let clock = TestEnvironment()
        let inner = ScriptedModel([.failure(.unavailable("1")), .failure(.unavailable("2")), .reply("recovered")])
        let breaker = CircuitBreakerModel(inner, threshold: 2, coolDown: .seconds(30), environment: clock.environment)
        await #expect(throws: LLMError.unavailable("1")) { _ = try await breaker.complete(hello) }
        await #expect(throws: LLMError.unavailable("2")) { _ = try await breaker.complete(hello) }
        await #expect(throws: LLMError.unavailable("the circuit is open after repeated failures")) { _ = try await breaker.complete(hello) }
        #expect(inner.requests.count == 2, "an open circuit does not call the model")
        clock.advance(by: 31)
        #expect(try await breaker.complete(hello).message.content == "recovered")
        #expect(breaker.current == .closed)
    }

    @Test("a half-open circuit that fails again opens for another cool-down; a caller's bad request does not count")
    func halfOpenFailure() async throws {
        let clock = TestEnvironment()
        let inner = ScriptedModel([.failure(.badRequest("unknown model")), .failure(.unavailable("1")), .failure(.unavailable("2"))])
        let breaker = CircuitBreakerModel(inner, threshold: 1, coolDown: .seconds(30), environment: clock.environment)
        await #expect(throws: LLMError.badRequest("unknown model")) { _ = try await breaker.complete(hello) }
        #expect(breaker.current == .closed)
        await #expect(throws: LLMError.unavailable("1")) { _ = try await breaker.complete(hello) }
        clock.advance(by: 31)
        await #expect(throws: LLMError.unavailable("2")) { _ = try await breaker.complete(hello) }
        guard case .open = breaker.current else {
            Issue.record("expected open, got \(breaker.current)")
            return
        }
    }

    @Test("a fallback chain asks the next model after a retryable or authentication failure, not after a bad request")
    func fallback() async throws {
        let primary = ScriptedModel([.failure(.unavailable("down")), .failure(.badRequest("bad")), .failure(.authentication("revoked"))])
        let secondary = ScriptedModel([.reply("from the backup"), .reply("unused"), .reply("backup again")])
        let chain = FallbackModel([primary, secondary])
        #expect(try await chain.complete(hello).message.content == "from the backup")
        await #expect(throws: LLMError.badRequest("bad")) { _ = try await chain.complete(hello) }
        #expect(try await chain.complete(hello).message.content == "unused")
        let none = FallbackModel([ScriptedModel([.failure(.unavailable("a"))]), ScriptedModel([.failure(.timedOut("b"))])])
        await #expect(throws: LLMError.timedOut("b")) { _ = try await none.complete(hello) }
    }

    @Test("the cache answers a repeated deterministic request from memory and leaves other requests alone")
    func cache() async throws {
        let inner = ScriptedModel([.reply("cached answer"), .reply("fresh one"), .reply("another")])
        let cache = CachingModel(inner, capacity: 10)
        var deterministic = hello
        deterministic.temperature = 0
        #expect(try await cache.complete(deterministic).message.content == "cached answer")
        #expect(try await cache.complete(deterministic).message.content == "cached answer")
        #expect(cache.hits == 1)
        #expect(inner.requests.count == 1)
        #expect(try await cache.complete(hello).message.content == "fresh one", "temperature unset: not cached")
        var other = deterministic
        other.messages.append(.user("and?"))
        #expect(try await cache.complete(other).message.content == "another")
    }

    @Test("a spent budget refuses before asking the model; usage is charged to every budget; a new day starts afresh")
    func budget() async throws {
        let clock = TestEnvironment()
        let now = clock.environment.now
        let perConversation = TokenBudget(tokensPerDay: 10, now: now), perUser = TokenBudget(tokensPerDay: 1_000, now: now)
        let inner = ScriptedModel([.reply("one two three four five six seven eight"), .reply("never"), .reply("next day")])
        let model = BudgetedModel(inner, budgets: [(perConversation, "conversation:1"), (perUser, "user:ann")])
        _ = try await model.complete(hello)
        // One prompt word and eight reply words.
        #expect(perConversation.used(by: "conversation:1") == 9)
        #expect(perUser.used(by: "user:ann") == 9)
        _ = try await model.complete(hello)
        #expect(perConversation.remaining(for: "conversation:1") == 0)
        let refused = await #expect(throws: LLMError.self) { _ = try await model.complete(hello) }
        #expect(refused == .budgetExceeded("conversation:1 has used its 10 tokens for today"))
        #expect(inner.requests.count == 2)
        clock.advance(by: 86_400)
        #expect(try await model.complete(hello).message.content == "next day")
    }
}
