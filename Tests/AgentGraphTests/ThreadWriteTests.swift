@testable import AgentGraph
import Foundation
import Synchronization
import Testing

/// Forwards to a saver and records which of its writes a run used, in order.
final class RecordingSaver: ForwardingSaver {
    let inner: any CheckpointSaver
    private let log = Mutex<[String]>([])

    init(_ inner: any CheckpointSaver) { self.inner = inner }

    var calls: [String] { log.withLock { $0 } }
    private func note(_ call: String) { log.withLock { $0.append(call) } }

    func claim(thread: String, runID: String, now: Date, leaseUntil: Date) async throws -> Int64 {
        note("claim")
        return try await inner.claim(thread: thread, runID: runID, now: now, leaseUntil: leaseUntil)
    }

    func put(_ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64, leaseUntil: Date) async throws {
        note(records.isEmpty ? "renew" : "put")
        try await inner.put(records, thread: thread, runID: runID, expectedVersion: expectedVersion, leaseUntil: leaseUntil)
    }

    func release(thread: String, runID: String) async throws {
        note("release")
        try await inner.release(thread: thread, runID: runID)
    }

    func create(_ records: [CheckpointRecord], thread: String, runID: String, now: Date, leaseUntil: Date) async throws {
        note("create")
        try await inner.create(records, thread: thread, runID: runID, now: now, leaseUntil: leaseUntil)
    }

    func putAndRelease(_ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64) async throws {
        note("putAndRelease")
        try await inner.putAndRelease(records, thread: thread, runID: runID, expectedVersion: expectedVersion)
    }

}

/// Claims through an in-memory saver but fails every `put`: a saver whose `create` is the
/// default (claim, then put).
final class FailingPutSaver: ForwardingSaver {
    let inner: any CheckpointSaver = InMemorySaver()
    struct Refused: Error {}

    func put(_ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64, leaseUntil: Date) async throws {
        throw Refused()
    }
}

@Suite("A run's first and last writes")
struct ThreadWriteTests {
    private func syncConfig(_ thread: String, new: Bool) -> RunConfig {
        var config = RunConfig(threadID: thread, durability: .sync)
        config.threadIsNew = new
        return config
    }

    /// Runs `compiled` on `thread`, which has checkpoints, as if it were new, and checks the
    /// run is refused with `threadBusy`.
    private func expectBusy(_ compiled: CompiledGraph<Counter>, asNew thread: String, durability: Durability) async {
        var config = RunConfig(threadID: thread, durability: durability)
        config.threadIsNew = true
        await #expect {
            _ = try await compiled.invoke(StateUpdate(), config: config)
        } throws: { error in
            if case .threadBusy = (error as? GraphError)?.kind { return true }
            return false
        }
    }

    @Test("a run on a new thread takes it with its first checkpoint and stores its last with the release", arguments: SaverKind.available)
    func newThreadWrites(kind: SaverKind) async throws {
        try await withSaver(kind) { base in
            let saver = RecordingSaver(base)
            let graph = try counterLoop(limit: 3, checkpointer: saver)
            let result = try await graph.invoke(StateUpdate(), config: syncConfig("fresh", new: true))
            #expect(result.state.count == 3)
            // Input, then one checkpoint a step: no claim and no release of their own.
            #expect(saver.calls == ["create", "put", "put", "putAndRelease"])
            #expect(try await graph.history(thread: "fresh").count == 4)
            // The lease is free and the version is the last checkpoint's: another run takes it at once.
            let version = try await base.claim(thread: "fresh", runID: "next", now: Date(), leaseUntil: Date().addingTimeInterval(60))
            #expect(version == result.checkpointID)
        }
    }

    @Test("a run on an existing thread claims it first, and still stores its last checkpoint with the release", arguments: SaverKind.available)
    func existingThreadWrites(kind: SaverKind) async throws {
        try await withSaver(kind) { base in
            let saver = RecordingSaver(base)
            var graph = StateGraph(Counter.self)
            graph.addNode("ask") { _, context in
                let answer = try context.interrupt("approve?", resumeAs: String.self)
                return .update(\.note, answer)
            }
            graph.addEdge(START, "ask")
            graph.addEdge("ask", END)
            let compiled = try graph.compile(checkpointer: saver)
            let stopped = try await compiled.invoke(StateUpdate(), config: syncConfig("asked", new: true))
            #expect(stopped.status == .interrupted)
            #expect(saver.calls == ["create", "putAndRelease"])
            let done = try await compiled.invoke(.resume("yes"), config: syncConfig("asked", new: false))
            #expect(done.state.note == "yes")
            #expect(saver.calls == ["create", "putAndRelease", "claim", "putAndRelease"])
            #expect(try await compiled.state(thread: "asked")?.next.isEmpty == true)
        }
    }

    @Test("a new thread's first write that fails leaves the thread free, with the default create")
    func failedCreateReleases() async throws {
        let saver = FailingPutSaver()
        let graph = try counterLoop(limit: 2, checkpointer: saver)
        await #expect(throws: FailingPutSaver.Refused.self) {
            _ = try await graph.invoke(StateUpdate(), config: syncConfig("refused", new: true))
        }
        // Not held until the 60-second lease runs out: another run takes it at once.
        let version = try await saver.claim(thread: "refused", runID: "next", now: Date(), leaseUntil: Date().addingTimeInterval(60))
        #expect(version == 0)
    }

    @Test("a run told its thread is new finds checkpoints there: threadBusy, and no node ran", arguments: SaverKind.available)
    func newThreadThatExists(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let calls = Calls()
            var graph = StateGraph(Counter.self)
            graph.addNode("inc") { state, _ in
                calls.hit("inc")
                return .update(\.count, state.count + 1)
            }
            graph.addEdge(START, "inc")
            graph.addEdge("inc", END)
            let compiled = try graph.compile(checkpointer: saver)
            _ = try await compiled.invoke(StateUpdate(), config: syncConfig("taken", new: false))
            #expect(calls["inc"] == 1)
            await expectBusy(compiled, asNew: "taken", durability: .sync)
            #expect(calls["inc"] == 1)
            #expect(try await compiled.history(thread: "taken").count == 2)
        }
    }

    @Test("under async durability a new thread's claim is stored in the background: nodes run meanwhile, a task waits for it",
          arguments: SaverKind.available)
    func asyncClaimHoldsTasks(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let calls = Calls()
            var graph = StateGraph(Counter.self)
            // Two nodes of one step: one without side effects, one with.
            graph.addNode("think") { _, _ in
                calls.hit("think")
                return .update(\.note, "thought")
            }
            graph.addNode("act") { state, context in
                let total: Int = try await context.task("act") {
                    calls.hit("act")
                    return state.total + 1
                }
                return .update(\.total, total)
            }
            graph.addEdge(START, "think")
            graph.addEdge(START, "act")
            graph.addEdge("think", END)
            graph.addEdge("act", END)
            let compiled = try graph.compile(checkpointer: saver)
            // The thread has a checkpoint: a run told it is new cannot claim it.
            _ = try await compiled.invoke(StateUpdate(), config: RunConfig(threadID: "held", durability: .sync))
            #expect(calls["think"] == 1 && calls["act"] == 1)

            await expectBusy(compiled, asNew: "held", durability: .async)
            // The node without side effects did not wait for the claim; the task never ran
            // without the lease, and the run stored nothing.
            #expect(calls["think"] == 2)
            #expect(calls["act"] == 1)
            #expect(try await compiled.history(thread: "held").count == 2)
        }
    }

    @Test("a node whose task finds the run's checkpoints refused is neither retried nor replaced by its fallback",
          arguments: SaverKind.available)
    func noRetryAfterRefusedCheckpoints(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let calls = Calls()
            var graph = StateGraph(Counter.self)
            // Retries anything, at once: only the refused checkpoints can stop it.
            let retry = RetryPolicy(maxAttempts: 3, initialInterval: .milliseconds(1), jitter: false) { _ in true }
            graph.addNode("act", policy: NodePolicy(retry: retry, fallback: "rescue")) { state, context in
                calls.hit("act")
                let total: Int = try await context.task("act") { state.total + 1 }
                return .update(\.total, total)
            }
            graph.addNode("rescue") { _, _ in
                calls.hit("rescue")
                return .update(\.note, "rescued")
            }
            graph.addEdge(START, "act")
            graph.addEdge("act", END)
            graph.addEdge("rescue", END)
            let compiled = try graph.compile(checkpointer: saver)
            _ = try await compiled.invoke(StateUpdate(), config: RunConfig(threadID: "held", durability: .sync))
            #expect(calls["act"] == 1)

            await expectBusy(compiled, asNew: "held", durability: .async)
            #expect(calls["act"] == 2, "one attempt, not three")
            #expect(calls["rescue"] == 0)
        }
    }
}
