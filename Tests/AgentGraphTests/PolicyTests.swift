import AgentGraph
import Foundation
import Synchronization
import Testing

struct Flaky: Error, CustomStringConvertible {
    var description: String { "flaky upstream" }
}

struct Fatal: Error {}

func singleNode(
    defaults: NodePolicy = NodePolicy(), policy: NodePolicy? = nil,
    _ action: @escaping NodeAction<Counter>
) throws -> CompiledGraph<Counter> {
    var graph = StateGraph(Counter.self, defaults: defaults)
    graph.addNode("work", policy: policy, action)
    graph.addEdge(START, "work")
    graph.addEdge("work", END)
    return try graph.compile()
}

@Suite("Node policies")
struct PolicyTests {
    @Test("retry waits with exponential backoff and jitter, then succeeds")
    func retryBackoff() async throws {
        let calls = Calls()
        let sleeps = RecordedSleeps()
        let graph = try singleNode(policy: NodePolicy(retry: RetryPolicy(maxAttempts: 4, initialInterval: .milliseconds(100), backoffFactor: 3))) { _, context in
            calls.hit("work")
            if context.attempt < 3 { throw Flaky() }
            return .update(\.count, context.attempt)
        }
        var run = RunConfig()
        run.environment = testEnvironment(sleeps: sleeps)
        let result = try await graph.invoke(StateUpdate(), config: run)
        #expect(result.state.count == 3)
        #expect(calls["work"] == 3)
        // 100 ms then 300 ms, each plus half again of jitter (the test's random source gives 0.5).
        #expect(sleeps.all == [.milliseconds(150), .milliseconds(450)])
    }

    @Test("retry gives up after max attempts, and does not retry errors it is told not to")
    func retryLimits() async throws {
        let calls = Calls()
        let policy = RetryPolicy(maxAttempts: 3, initialInterval: .milliseconds(1), retryOn: { $0 is Flaky })
        let graph = try singleNode(policy: NodePolicy(retry: policy)) { _, context in
            let fatal = try context.configurable("kind", as: String.self) == "fatal"
            calls.hit(fatal ? "fatal" : "flaky")
            throw fatal ? Fatal() as any Error : Flaky()
        }
        var run = RunConfig(configurable: ["kind": "flaky"])
        run.environment = testEnvironment()
        let flaky = await #expect(throws: GraphError.self) { _ = try await graph.invoke(StateUpdate(), config: run) }
        #expect(flaky?.underlying is Flaky)
        #expect(calls["flaky"] == 3)
        run.configurable["kind"] = "fatal"
        await #expect(throws: GraphError.self) { _ = try await graph.invoke(StateUpdate(), config: run) }
        #expect(calls["fatal"] == 1)
    }

    @Test("a node past its timeout is cancelled and fails with a timeout error")
    func timeout() async throws {
        let sawCancellation = Mutex(false)
        let graph = try singleNode(policy: NodePolicy(timeout: .milliseconds(20))) { _, _ in
            do {
                try await Task.sleep(for: .seconds(3600))
            } catch {
                sawCancellation.withLock { $0 = error is CancellationError }
                throw error
            }
            return StateUpdate()
        }
        let error = await #expect(throws: GraphError.self) { _ = try await graph.invoke(StateUpdate()) }
        guard case .timeout(let limit)? = error?.kind else {
            Issue.record("expected timeout, got \(String(describing: error))")
            return
        }
        #expect(limit == .milliseconds(20))
        #expect(error?.node == "work")
        #expect(sawCancellation.withLock { $0 })
    }

    @Test("on final failure the fallback node runs, sees the failure, and routing continues from it")
    func fallback() async throws {
        var graph = StateGraph(Counter.self)
        graph.addNode("primary", policy: NodePolicy(fallback: "backup")) { _, _ in throw Flaky() }
        graph.addNode("backup") { _, context in
            .update(\.note, "backup after \(context.failure?.node ?? "?"): \(context.failure.map { "\($0.error)" } ?? "?")")
        }
        graph.addNode("after") { _, _ in .update(\.log, ["after"]) }
        graph.addEdge(START, "primary")
        graph.addEdge("primary", "after")
        graph.addEdge("backup", "after")
        graph.addEdge("after", END)
        let result = try await graph.compile().invoke(StateUpdate())
        #expect(result.state.note == "backup after primary: flaky upstream")
        #expect(result.state.log == ["after"])
    }

    @Test("a cached node returns its stored update for the same input until the TTL passes")
    func cache() async throws {
        let calls = Calls()
        let clock = ManualClock()
        let graph = try singleNode(policy: NodePolicy(cache: CachePolicy(ttl: .seconds(60)))) { state, _ in
            calls.hit("work")
            return .update(\.total, state.count * 10)
        }
        var run = RunConfig()
        run.environment = testEnvironment(clock: clock)
        #expect(try await graph.invoke(.update(\.count, 2), config: run).state.total == 20)
        #expect(try await graph.invoke(.update(\.count, 2), config: run).state.total == 20)
        #expect(calls["work"] == 1)
        #expect(try await graph.invoke(.update(\.count, 3), config: run).state.total == 30)
        #expect(calls["work"] == 2)
        clock.advance(61)
        #expect(try await graph.invoke(.update(\.count, 2), config: run).state.total == 20)
        #expect(calls["work"] == 3)
    }

    @Test("graph-wide defaults apply to every node; a node's own policy overrides them")
    func defaults() async throws {
        let calls = Calls()
        let sleeps = RecordedSleeps()
        var graph = StateGraph(Counter.self, defaults: NodePolicy(retry: RetryPolicy(maxAttempts: 2, initialInterval: .milliseconds(10), jitter: false)))
        graph.addNode("inherits") { _, context in
            calls.hit("inherits")
            if context.attempt == 1 { throw Flaky() }
            return .update(\.log, ["inherits"])
        }
        graph.addNode("overrides", policy: NodePolicy(retry: RetryPolicy(maxAttempts: 1))) { _, _ in
            calls.hit("overrides")
            throw Flaky()
        }
        graph.addEdge(START, "inherits")
        graph.addEdge("inherits", "overrides")
        graph.addEdge("overrides", END)
        var run = RunConfig()
        run.environment = testEnvironment(sleeps: sleeps)
        let error = await #expect(throws: GraphError.self) { _ = try await graph.compile().invoke(StateUpdate(), config: run) }
        #expect(error?.node == "overrides")
        #expect(calls["inherits"] == 2)
        #expect(calls["overrides"] == 1)
        #expect(sleeps.all == [.milliseconds(10)])
    }
}
