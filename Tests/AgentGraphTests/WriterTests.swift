@testable import AgentGraph
import Foundation
import Synchronization
import Testing

@Suite("Checkpoint writer and shared connections")
struct WriterTests {
    @Test("a lease lost while a node runs is noticed by the heartbeat, and the run's next checkpoint is refused")
    func lostLeaseStopsTheRun() async throws {
        let saver = InMemorySaver()
        let clock = ManualClock()
        let version = try await saver.claim(thread: "t", runID: "a", now: clock.now, leaseUntil: clock.now.addingTimeInterval(60))
        let writer = CheckpointWriter(saver: saver, thread: "t", runID: "a", version: version, leaseDuration: .seconds(60), now: { clock.now })
        // Another run takes the thread once the lease has run out.
        clock.advance(61)
        _ = try await saver.claim(thread: "t", runID: "b", now: clock.now, leaseUntil: clock.now.addingTimeInterval(60))
        await writer.renew()
        let record = CheckpointRecord(threadID: "t", namespace: "", id: 0, parentID: nil, step: 0, source: "loop", createdAt: clock.now, snapshot: nil, body: Data("{}".utf8))
        await #expect(throws: CheckpointConflict.versionMismatch) {
            _ = try await writer.append(record, durability: .async)
        }
        #expect(try await saver.records(thread: "t", namespace: "").isEmpty)
    }

    @Test("under async durability a run's last checkpoint waits for a claim still in flight, and is stored with the release",
          .timeLimit(.minutes(1)))
    func lastCheckpointBehindTheClaim() async throws {
        let saver = GatedCreateSaver()
        let clock = ManualClock()
        let writer = CheckpointWriter(saver: saver, thread: "t", runID: "a", version: 0, leaseDuration: .seconds(60), now: { clock.now },
                                      claimed: false, claimsInBackground: true)
        func record(_ step: Int) -> CheckpointRecord {
            CheckpointRecord(threadID: "t", namespace: "", id: 0, parentID: nil, step: step, source: "loop", createdAt: clock.now,
                             snapshot: nil, body: Data("{}".utf8))
        }
        // The claim is held until the test lets it through; neither append waits for it.
        _ = try await writer.append(record(-1), durability: .async)
        _ = try await writer.append(record(0), durability: .exit)
        saver.open()
        try await writer.finish()
        #expect(saver.calls == ["create", "putAndRelease"])
        #expect(try await saver.records(thread: "t", namespace: "").count == 2)
    }

    @Test("a fallback sees the failed node's task results instead of running the side effect again")
    func fallbackSharesTaskResults() async throws {
        let calls = Calls()
        var graph = StateGraph(Counter.self)
        graph.addNode("primary", policy: NodePolicy(fallback: "backup")) { _, context in
            _ = try await context.task("charge") { () async throws -> String in
                calls.hit("charge")
                return "receipt-1"
            }
            throw Flaky()
        }
        graph.addNode("backup") { _, context in
            let receipt = try await context.task("charge") { () async throws -> String in
                calls.hit("charge")
                return "receipt-2"
            }
            return .update(\.note, receipt)
        }
        graph.addEdge(START, "primary")
        graph.addEdge("primary", END)
        graph.addEdge("backup", END)
        let result = try await graph.compile().invoke(StateUpdate())
        #expect(result.state.note == "receipt-1")
        #expect(calls["charge"] == 1)
    }

    @Test("many runs on different threads share one SQLite connection", arguments: SaverKind.sql)
    func concurrentThreadsOnOneConnection(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let graph = try counterLoop(limit: 5, checkpointer: saver)
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        let durability: Durability = index % 2 == 0 ? .async : .sync
                        var config = RunConfig(threadID: "shared-\(index)", durability: durability)
                        // Each thread has one run: a lease that cannot run out on a slow, loaded
                        // machine keeps this test about sharing the connection.
                        config.leaseDuration = .seconds(3600)
                        return try await graph.invoke(StateUpdate(), config: config).state.count
                    }
                }
                for try await count in group { #expect(count == 5) }
            }
            for index in 0..<20 {
                #expect(try await graph.history(thread: "shared-\(index)").count == 6)
            }
        }
    }
}

/// An in-memory saver whose `create` (a new thread's claim) waits until `open()`; it records
/// the writes it is asked for, in order.
final class GatedCreateSaver: ForwardingSaver, Sendable {
    let inner: any CheckpointSaver = InMemorySaver()
    private let gate = Mutex<(open: Bool, waiting: CheckedContinuation<Void, Never>?)>((false, nil))
    private let log = Mutex<[String]>([])

    var calls: [String] { log.withLock { $0 } }

    func open() {
        let waiting = gate.withLock { gate in
            defer { gate = (true, nil) }
            return gate.waiting
        }
        waiting?.resume()
    }

    func create(_ records: [CheckpointRecord], thread: String, runID: String, now: Date, leaseUntil: Date) async throws {
        log.withLock { $0.append("create") }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let open = gate.withLock { gate in
                if !gate.open { gate.waiting = continuation }
                return gate.open
            }
            if open { continuation.resume() }
        }
        try await inner.create(records, thread: thread, runID: runID, now: now, leaseUntil: leaseUntil)
    }

    func put(_ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64, leaseUntil: Date) async throws {
        log.withLock { $0.append(records.isEmpty ? "renew" : "put") }
        try await inner.put(records, thread: thread, runID: runID, expectedVersion: expectedVersion, leaseUntil: leaseUntil)
    }

    func putAndRelease(_ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64) async throws {
        log.withLock { $0.append("putAndRelease") }
        try await inner.putAndRelease(records, thread: thread, runID: runID, expectedVersion: expectedVersion)
    }

    func release(thread: String, runID: String) async throws {
        log.withLock { $0.append("release") }
        try await inner.release(thread: thread, runID: runID)
    }
}
