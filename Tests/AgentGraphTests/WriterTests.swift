@testable import AgentGraph
import Foundation
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
