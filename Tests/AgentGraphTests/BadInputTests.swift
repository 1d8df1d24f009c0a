import AgentGraph
import AgentGraphSQL
import Foundation
import Testing

/// A checkpointer whose stored bodies were damaged (a field renamed, bytes cut off).
final class DamagingSaver: ForwardingSaver {
    let inner: any CheckpointSaver = InMemorySaver()
    let damage: @Sendable (Data) -> Data

    init(damage: @escaping @Sendable (Data) -> Data) { self.damage = damage }

    func records(thread: String, namespace: String) async throws -> [CheckpointRecord] {
        try await inner.records(thread: thread, namespace: namespace).map { record in
            var damaged = record
            damaged.body = damage(record.body)
            return damaged
        }
    }
}

@Suite("Bad input")
struct BadInputTests {
    @Test("a checkpoint naming a field the state no longer has reads back as a clear corruptCheckpoint error")
    func unknownFieldInCheckpoint() async throws {
        let saver = DamagingSaver { Data(String(decoding: $0, as: UTF8.self).replacingOccurrences(of: "\"count\"", with: "\"renamed\"").utf8) }
        let graph = try counterLoop(limit: 2, checkpointer: saver)
        _ = try await graph.invoke(StateUpdate(), config: config("damaged"))
        let error = await #expect(throws: GraphError.self) { _ = try await graph.state(thread: "damaged") }
        guard case .corruptCheckpoint(let why)? = error?.kind else {
            Issue.record("expected corruptCheckpoint, got \(String(describing: error))")
            return
        }
        #expect(why.contains("'renamed'"))
    }

    @Test("a truncated checkpoint body is a corruptCheckpoint error naming the checkpoint and thread")
    func truncatedCheckpoint() async throws {
        let saver = DamagingSaver { $0.prefix(5) }
        let graph = try counterLoop(limit: 1, checkpointer: saver)
        _ = try await graph.invoke(StateUpdate(), config: config("cut"))
        let error = await #expect(throws: GraphError.self) { _ = try await graph.invoke(.continue, config: config("cut")) }
        guard case .corruptCheckpoint? = error?.kind else {
            Issue.record("expected corruptCheckpoint, got \(String(describing: error))")
            return
        }
        #expect(error?.thread == "cut")
    }

    @Test("a store namespace part containing the separator character is refused", arguments: SaverKind.sql)
    func badNamespace(kind: SaverKind) async throws {
        try await withStore(kind, clock: ManualClock()) { store in
            await #expect(throws: StoreError.self) {
                try await store.put(["users", "a\u{1F}b"], key: "k", value: "v")
            }
        }
    }

    @Test("a compile of an empty graph reports the missing entry")
    func emptyGraph() {
        #expect(throws: GraphValidationError.self) { _ = try StateGraph(Counter.self).compile() }
    }
}
