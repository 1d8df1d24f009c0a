import AgentGraph
import AgentGraphSQL
import Foundation
import Testing

/// A deterministic embedding: letter counts, so texts sharing letters are similar.
let letterEmbedder: Embedder = { texts in
    texts.map { text in
        var vector = [Float](repeating: 0, count: 26)
        for scalar in text.lowercased().unicodeScalars where ("a"..."z").contains(scalar) {
            vector[Int(scalar.value) - 97] += 1
        }
        return vector
    }
}

func withStore(_ kind: SaverKind, clock: ManualClock, _ body: (any GraphStore) async throws -> Void) async throws {
    let index = StoreIndex(fields: ["text"], embed: letterEmbedder)
    if kind == .memory {
        try await body(InMemoryStore(index: index, now: { clock.now }))
        return
    }
    let database = try await TestDatabase.open(kind)
    do {
        let store = SQLStore(database: database.sql, index: index, tablePrefix: database.prefix, now: { clock.now })
        try await store.prepare()
        try await body(store)
    } catch {
        Issue.record(error)
    }
    await database.shutdown()
}

@Suite("Store")
struct StoreTests {
    @Test("items by namespace and key: put, replace, get, delete, list namespaces", arguments: SaverKind.available)
    func crud(kind: SaverKind) async throws {
        try await withStore(kind, clock: ManualClock()) { store in
            try await store.put(["users", "ana", "memories"], key: "m1", value: ["text": "likes tea", "kind": "taste"])
            try await store.put(["users", "ana", "memories"], key: "m1", value: ["text": "likes green tea", "kind": "taste"])
            try await store.put(["users", "bo", "memories"], key: "m1", value: ["text": "likes coffee"])
            let item = try #require(try await store.get(["users", "ana", "memories"], key: "m1"))
            #expect(item.value["text"] == "likes green tea")
            #expect(item.namespace == ["users", "ana", "memories"])
            #expect(try await store.get(["users", "ana"], key: "m1") == nil)
            #expect(try await store.listNamespaces(prefix: ["users"]) == [["users", "ana", "memories"], ["users", "bo", "memories"]])
            #expect(try await store.listNamespaces(prefix: ["users", "bo"]) == [["users", "bo", "memories"]])
            try await store.delete(["users", "ana", "memories"], key: "m1")
            #expect(try await store.get(["users", "ana", "memories"], key: "m1") == nil)
        }
    }

    @Test("items expire after their TTL", arguments: SaverKind.available)
    func ttl(kind: SaverKind) async throws {
        let clock = ManualClock()
        try await withStore(kind, clock: clock) { store in
            try await store.put(["s"], key: "short", value: ["text": "gone soon"], ttl: .seconds(30), index: true)
            try await store.put(["s"], key: "long", value: ["text": "stays"], ttl: nil, index: true)
            #expect(try await store.get(["s"], key: "short") != nil)
            clock.advance(31)
            #expect(try await store.get(["s"], key: "short") == nil)
            #expect(try await store.search(["s"]).map(\.key) == ["long"])
        }
    }

    @Test("search ranks by similarity to the query, under a namespace prefix, with filters", arguments: SaverKind.available)
    func similarity(kind: SaverKind) async throws {
        let clock = ManualClock()
        try await withStore(kind, clock: clock) { store in
            try await store.put(["u", "ana"], key: "tea", value: ["text": "green tea every morning", "kind": "taste"])
            clock.advance(1)
            try await store.put(["u", "ana"], key: "bike", value: ["text": "rides a bike to work", "kind": "habit"])
            clock.advance(1)
            try await store.put(["u", "anabel"], key: "tea", value: ["text": "green tea", "kind": "taste"])
            clock.advance(1)
            try await store.put(["u", "ana"], key: "plain", value: ["kind": "taste"], ttl: nil, index: false)
            let ranked = try await store.search(["u", "ana"], query: "green tea", limit: 5)
            #expect(ranked.map(\.key) == ["tea", "bike"])
            #expect((ranked.first?.score ?? 0) > (ranked.last?.score ?? 1))
            let newest = try await store.search(["u", "ana"])
            #expect(newest.map(\.key) == ["plain", "bike", "tea"])
            let filtered = try await store.search(["u"], filter: ["kind": "taste"])
            #expect(filtered.map(\.key) == ["plain", "tea", "tea"])
            #expect(try await store.search(["u"], limit: 1).count == 1)
        }
    }

    @Test("nodes read and write the store through their context, across threads")
    func storeFromNodes() async throws {
        let store = InMemoryStore()
        var graph = StateGraph(Counter.self)
        graph.addNode("remember") { state, context in
            let namespace = ["users", try context.configurable("user", as: String.self) ?? "?"]
            let seen = try await context.store?.get(namespace, key: "visits")?.value.decode(as: Int.self) ?? 0
            try await context.store?.put(namespace, key: "visits", value: .number(Double(seen + 1)))
            return .update(\.count, seen + 1)
        }
        graph.addEdge(START, "remember")
        graph.addEdge("remember", END)
        let compiled = try graph.compile(checkpointer: InMemorySaver(), store: store)
        for thread in ["t1", "t2", "t3"] {
            _ = try await compiled.invoke(StateUpdate(), config: RunConfig(threadID: thread, configurable: ["user": "ana"]))
        }
        let last = try await compiled.invoke(StateUpdate(), config: RunConfig(threadID: "t4", configurable: ["user": "ana"]))
        #expect(last.state.count == 4)
    }
}
