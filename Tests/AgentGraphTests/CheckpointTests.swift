import AgentGraph
import AgentGraphSQL
import Foundation
import Synchronization
import Testing

/// Wraps a checkpointer and dies like a process would after `allowedPuts` writes: the next
/// write never lands, and the lease is never released.
final class CrashingSaver: ForwardingSaver {
    struct SimulatedCrash: Error {}
    let inner: any CheckpointSaver
    private let remaining: Mutex<Int>

    init(_ inner: any CheckpointSaver, allowedPuts: Int) {
        self.inner = inner
        self.remaining = Mutex(allowedPuts)
    }

    func put(_ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64, leaseUntil: Date) async throws {
        let alive = remaining.withLock { remaining in
            defer { remaining -= 1 }
            return remaining > 0
        }
        guard alive else { throw SimulatedCrash() }
        try await inner.put(records, thread: thread, runID: runID, expectedVersion: expectedVersion, leaseUntil: leaseUntil)
    }

    func release(thread: String, runID: String) async throws {}
}

/// A node that waits until the test lets it go.
final class Latch: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    private let entered = Rendezvous(parties: 2)

    /// Called by the node: signals that it is running, then waits for `open()`.
    func hold() async {
        await entered.arrive()
        await withCheckedContinuation { continuation in
            let go = state.withLock { state in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if go { continuation.resume() }
        }
    }

    /// Called by the test: returns once the node is inside `hold()`.
    func waitUntilHeld() async { await entered.arrive() }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }
}

func chatGraph(checkpointer: any CheckpointSaver, turns: Int) throws -> CompiledGraph<Chat> {
    var graph = StateGraph(Chat.self)
    graph.addNode("turn") { state, _ in
        let n = state.turns
        return .update(\.messages, [
            ChatMessage(id: "u\(n)", role: "user", text: "Question number \(n): what does the checkpoint hold after this step?"),
            ChatMessage(id: "a\(n)", role: "assistant", text: "Answer number \(n): only what this step appended, never the whole history."),
        ]).and(\.turns, 1)
    }
    graph.addEdge(START, "turn")
    graph.addConditionalEdges("turn", to: ["turn", END]) { state in state.turns < turns ? ["turn"] : [.end] }
    return try graph.compile(checkpointer: checkpointer)
}

@Suite("Checkpoints")
struct CheckpointTests {
    @Test("a checkpoint after every step, linked to its parent, each reading back its state", arguments: SaverKind.available)
    func checkpointEveryStep(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let graph = try counterLoop(limit: 3, checkpointer: saver)
            let result = try await graph.invoke(.update(\.note, "go"), config: config("t1"))
            #expect(result.state.count == 3)
            let history = try await graph.history(thread: "t1")
            #expect(history.map(\.step) == [2, 1, 0, -1])
            #expect(history.map(\.source) == ["loop", "loop", "loop", "input"])
            #expect(history.map(\.state.count) == [3, 2, 1, 0])
            #expect(history.map(\.next) == [[], ["inc"], ["inc"], ["inc"]])
            for (child, parent) in zip(history, history.dropFirst()) {
                #expect(child.parentID == parent.checkpointID)
            }
            #expect(history.last?.parentID == nil)
            #expect(history.first?.checkpointID == result.checkpointID)
            let latest = try await graph.state(thread: "t1")
            #expect(latest?.state.log == ["inc1", "inc2", "inc3"])
            #expect(try await graph.state(thread: "nobody") == nil)
        }
    }

    @Test("a chat appending 2 messages a step stores at most 2× the bytes it appends", arguments: SaverKind.available)
    func storageGrowsWithDeltas(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let graph = try chatGraph(checkpointer: saver, turns: 100)
            let result = try await graph.invoke(StateUpdate(), config: RunConfig(threadID: "chat", recursionLimit: 200))
            #expect(result.state.messages.count == 200)
            let appended = try result.state.messages.reduce(0) { $0 + (try JSONEncoder().encode($1)).count }
            let stored = try await saver.records(thread: "chat", namespace: "").reduce(0) { $0 + $1.storedBytes }
            #expect(Double(stored) <= 2 * Double(appended), "stored \(stored) bytes for \(appended) appended")
            // Storing the whole state per step would be ~50× here.
            #expect(stored > appended)
        }
    }

    @Test("pruning keeps the last N checkpoints, each still reading back the same state", arguments: SaverKind.available)
    func pruning(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let graph = try counterLoop(limit: 20, checkpointer: saver)
            _ = try await graph.invoke(StateUpdate(), config: config("p"))
            let before = try await graph.history(thread: "p")
            #expect(before.count == 21)
            let deleted = try await graph.pruneHistory(thread: "p", keepLast: 5)
            #expect(deleted == 16)
            let after = try await graph.history(thread: "p")
            #expect(after.map(\.checkpointID) == before.prefix(5).map(\.checkpointID))
            #expect(after.map(\.state.log) == before.prefix(5).map(\.state.log))
            // The thread goes on from its pruned history.
            let more = try await graph.invoke(.update(\.count, 18), config: config("p"))
            #expect(more.state.log.count == 22)
            #expect(more.state.log.suffix(2) == ["inc19", "inc20"])
        }
    }

    @Test("pruning by time keeps checkpoints created after the cut", arguments: [SaverKind.memory])
    func pruningByTime(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let clock = ManualClock()
            let graph = try counterLoop(limit: 2, checkpointer: saver)
            _ = try await graph.invoke(StateUpdate(), config: config("pt", clock: clock))
            clock.advance(3600)
            let cut = clock.now
            _ = try await graph.invoke(.update(\.count, 0), config: config("pt", clock: clock))
            let deleted = try await graph.pruneHistory(thread: "pt", keepLast: 0, keepingAfter: cut)
            #expect(deleted == 3)
            let after = try await graph.history(thread: "pt")
            #expect(after.count == 3)
            #expect(after.first?.state.log == ["inc1", "inc2", "inc1", "inc2"])
        }
    }

    @Test("a second run on a thread while one runs is refused; other threads are not", arguments: SaverKind.available)
    func concurrentRunsRefused(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let latch = Latch()
            var builder = StateGraph(Counter.self)
            builder.addNode("slow") { state, context in
                if context.config.threadID == "busy" && state.count == 0 { await latch.hold() }
                return .update(\.count, state.count + 1)
            }
            builder.addEdge(START, "slow")
            builder.addEdge("slow", END)
            let graph = try builder.compile(checkpointer: saver)
            let first = Task { try await graph.invoke(StateUpdate(), config: config("busy")) }
            await latch.waitUntilHeld()
            let error = await #expect(throws: GraphError.self) {
                _ = try await graph.invoke(StateUpdate(), config: config("busy"))
            }
            guard case .threadBusy? = error?.kind else {
                Issue.record("expected threadBusy, got \(String(describing: error))")
                latch.open()
                return
            }
            #expect(error?.thread == "busy")
            let other = try await graph.invoke(StateUpdate(), config: config("elsewhere"))
            #expect(other.state.count == 1)
            latch.open()
            #expect(try await first.value.state.count == 1)
            // Once the first run is done, the thread takes runs again.
            #expect(try await graph.invoke(StateUpdate(), config: config("busy")).state.count == 2)
        }
    }

    @Test("a run whose lease expired loses the thread: its later writes are refused", arguments: SaverKind.available)
    func expiredLeaseIsTakenOver(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let clock = ManualClock()
            let latch = Latch()
            var builder = StateGraph(Counter.self)
            builder.addNode("work") { state, context in
                if context.config.configurable["stall"] == true { await latch.hold() }
                return .update(\.count, state.count + 1)
            }
            builder.addEdge(START, "work")
            builder.addEdge("work", END)
            let graph = try builder.compile(checkpointer: saver)
            var stalled = config("lease", clock: clock)
            stalled.configurable["stall"] = true
            let first = Task { try await graph.invoke(StateUpdate(), config: stalled) }
            await latch.waitUntilHeld()
            clock.advance(61)
            let second = try await graph.invoke(StateUpdate(), config: config("lease", clock: clock))
            #expect(second.state.count == 1)
            latch.open()
            let error = await #expect(throws: GraphError.self) { _ = try await first.value }
            guard case .concurrentUpdate? = error?.kind else {
                Issue.record("expected concurrentUpdate, got \(String(describing: error))")
                return
            }
            #expect(try await graph.state(thread: "lease")?.state.count == 1)
        }
    }

    @Test("a lease that was renewed is not taken over after the first lease's end, only after the renewed one's", arguments: SaverKind.available)
    func renewedLeaseHolds(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let start = Date(timeIntervalSince1970: 1_800_000_000)
            let version = try await saver.claim(thread: "renew", runID: "a", now: start, leaseUntil: start.addingTimeInterval(60))
            // Run "a" renews at 50 s (an empty put only extends the lease) until 110 s.
            try await saver.put([], thread: "renew", runID: "a", expectedVersion: version, leaseUntil: start.addingTimeInterval(110))
            await #expect(throws: CheckpointConflict.busy) {
                _ = try await saver.claim(thread: "renew", runID: "b", now: start.addingTimeInterval(70), leaseUntil: start.addingTimeInterval(130))
            }
            let taken = try await saver.claim(thread: "renew", runID: "b", now: start.addingTimeInterval(111), leaseUntil: start.addingTimeInterval(171))
            #expect(taken == version)
        }
    }

    @Test("a crash between steps resumes from the last checkpoint with the same final state", arguments: SaverKind.available)
    func crashResume(kind: SaverKind) async throws {
        let reference = try await counterLoop(limit: 10).invoke(.update(\.note, "start"))
        let clock = ManualClock()
        let calls = Calls()
        let database = kind == .memory ? nil : try await TestDatabase.open(kind)
        let memory = InMemorySaver()
        func saver(_ database: TestDatabase?) async throws -> any CheckpointSaver {
            guard let database else { return memory }
            let saver = SQLCheckpointSaver(database: database.sql, tablePrefix: database.prefix)
            try await saver.prepare()
            return saver
        }
        var reopened = database
        do {
            // The process dies after the input checkpoint and 4 steps are stored.
            let crashing = CrashingSaver(try await saver(database), allowedPuts: 5)
            await #expect(throws: CrashingSaver.SimulatedCrash.self) {
                _ = try await counterLoop(limit: 10, checkpointer: crashing, calls: calls)
                    .invoke(.update(\.note, "start"), config: config("crash", clock: clock, durability: .sync))
            }
            #expect(calls["inc"] == 5)
            // A new process: a new connection to the same file or server, a new graph.
            if let database, kind == .sqlite {
                await database.disconnect()
                reopened = try await TestDatabase.open(.sqlite, path: database.path)
            }
            let graph = try counterLoop(limit: 10, checkpointer: try await saver(reopened), calls: calls)
            #expect(try await graph.state(thread: "crash")?.state.count == 4)
            // The dead run's lease still holds the thread until it expires.
            await #expect(throws: GraphError.self) { _ = try await graph.invoke(.continue, config: config("crash", clock: clock)) }
            clock.advance(61)
            let resumed = try await graph.invoke(.continue, config: config("crash", clock: clock))
            #expect(resumed.state.count == reference.state.count)
            #expect(resumed.state.log == reference.state.log)
            #expect(resumed.state.note == reference.state.note)
            #expect(calls["inc"] == 11)
        } catch {
            Issue.record(error)
        }
        await reopened?.shutdown()
    }

    @Test("history, state at any checkpoint, and replay from an earlier one", arguments: SaverKind.available)
    func timeTravel(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let graph = try counterLoop(limit: 5, checkpointer: saver)
            _ = try await graph.invoke(StateUpdate(), config: config("tt"))
            let history = try await graph.history(thread: "tt")
            let atTwo = try #require(history.first { $0.state.count == 2 })
            let read = try await graph.state(thread: "tt", checkpointID: atTwo.checkpointID)
            #expect(read?.state.log == ["inc1", "inc2"])
            #expect(read?.next == ["inc"])

            var replay = config("tt")
            replay.checkpointID = atTwo.checkpointID
            let replayed = try await graph.invoke(.continue, config: replay)
            #expect(replayed.state.log == ["inc1", "inc2", "inc3", "inc4", "inc5"])
            #expect(replayed.steps == 3)
            let after = try await graph.history(thread: "tt")
            #expect(after.count == history.count + 3)
            // The replayed branch hangs off the checkpoint it started from.
            #expect(after[2].parentID == atTwo.checkpointID)
            await #expect(throws: GraphError.self) {
                var missing = config("tt")
                missing.checkpointID = 999_999
                _ = try await graph.invoke(.continue, config: missing)
            }
        }
    }

    @Test("forking by updating state at a checkpoint leaves the original intact", arguments: SaverKind.available)
    func fork(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let graph = try counterLoop(limit: 5, checkpointer: saver)
            _ = try await graph.invoke(StateUpdate(), config: config("f"))
            let original = try await graph.history(thread: "f")
            let atOne = try #require(original.first { $0.state.count == 1 })

            let forkID = try await graph.updateState(
                thread: "f", checkpointID: atOne.checkpointID, update: .update(\.count, 3).and(\.log, ["edited"]), asNode: "inc"
            )
            let forked = try #require(try await graph.state(thread: "f", checkpointID: forkID))
            #expect(forked.parentID == atOne.checkpointID)
            #expect(forked.source == "update")
            #expect(forked.writers == ["inc"])
            #expect(forked.next == ["inc"])
            let continued = try await graph.invoke(.continue, config: config("f"))
            #expect(continued.state.log == ["inc1", "edited", "inc4", "inc5"])

            let now = try await graph.history(thread: "f")
            let untouched = now.filter { checkpoint in original.contains { $0.checkpointID == checkpoint.checkpointID } }
            #expect(untouched.map(\.checkpointID) == original.map(\.checkpointID))
            #expect(untouched.map(\.state.log) == original.map(\.state.log))
            #expect(try await graph.state(thread: "f", checkpointID: original[0].checkpointID)?.state.count == 5)

            await #expect(throws: GraphError.self) {
                try await graph.updateState(thread: "f", update: .update(\.count, 0), asNode: "nope")
            }
        }
    }

    @Test("without a checkpointer, resuming and time travel say a checkpointer is needed")
    func noCheckpointer() async throws {
        let graph = try counterLoop(limit: 1)
        let error = await #expect(throws: GraphError.self) { _ = try await graph.invoke(.continue, config: config("x")) }
        guard case .noCheckpointer? = error?.kind else {
            Issue.record("expected noCheckpointer, got \(String(describing: error))")
            return
        }
        let withSaver = try counterLoop(limit: 1, checkpointer: InMemorySaver())
        let missingThread = await #expect(throws: GraphError.self) { _ = try await withSaver.invoke(StateUpdate()) }
        guard case .threadRequired? = missingThread?.kind else {
            Issue.record("expected threadRequired, got \(String(describing: missingThread))")
            return
        }
    }
}
