import AgentGraph
import Foundation
import Testing

@Suite("State and reducers")
struct StateTests {
    @Test("each reducer combines as named: replace, append, sum, merge by id, dictionary merge, custom")
    func reducers() throws {
        struct S: GraphState {
            var name = ""
            var items: [Int] = []
            var total = 0
            var messages: [ChatMessage] = []
            var tags: [String: String] = [:]
            var longest = ""
            static let schema: StateSchema<S> = [
                .field("name", \.name),
                .field("items", \.items, .append),
                .field("total", \.total, .sum),
                .field("messages", \.messages, .mergeByID()),
                .field("tags", \.tags, .merge()),
                .field("longest", \.longest, .custom("longest") { $1.count > $0.count ? $1 : $0 }),
            ]
        }
        var state = S()
        state.name = "old"
        state.items = [1]
        state.total = 5
        state.messages = [ChatMessage(id: "a", role: "user", text: "hi"), ChatMessage(id: "b", role: "ai", text: "…")]
        state.tags = ["x": "1", "y": "2"]
        state.longest = "abc"
        let update = StateUpdate<S>
            .update(\.name, "new")
            .and(\.items, [2, 3])
            .and(\.total, 7)
            .and(\.messages, [ChatMessage(id: "b", role: "ai", text: "hello"), ChatMessage(id: "c", role: "user", text: "bye")])
            .and(\.tags, ["y": "3", "z": "4"])
            .and(\.longest, "ab")
        let next = try update.applied(to: state)
        #expect(next.name == "new")
        #expect(next.items == [1, 2, 3])
        #expect(next.total == 12)
        #expect(next.messages.map(\.id) == ["a", "b", "c"])
        #expect(next.messages[1].text == "hello")
        #expect(next.tags == ["x": "1", "y": "3", "z": "4"])
        #expect(next.longest == "abc")
    }

    @Test("two nodes writing one replace field in a step fail naming both nodes and the field")
    func conflictingReplaceWrites() async throws {
        var graph = StateGraph(Counter.self)
        graph.addNode("left") { _, _ in .update(\.note, "L") }
        graph.addNode("right") { _, _ in .update(\.note, "R") }
        graph.addEdge(START, "left")
        graph.addEdge(START, "right")
        graph.addEdge("left", END)
        graph.addEdge("right", END)
        let error = await #expect(throws: GraphError.self) {
            _ = try await graph.compile().invoke(StateUpdate())
        }
        guard case .conflictingWrites(let field, let nodes)? = error?.kind else {
            Issue.record("expected conflictingWrites, got \(String(describing: error))")
            return
        }
        #expect(field == "note")
        #expect(nodes == ["left", "right"])
        #expect(error?.description.contains("'left' and 'right'") == true)
        #expect(error?.step == 0)
    }

    @Test("reducer fields merge in node order, whatever order the nodes finish in")
    func deterministicMergeOrder() async throws {
        for _ in 0..<5 {
            let rendezvous = Rendezvous(parties: 3)
            var graph = StateGraph(Counter.self)
            // "c" finishes first and "a" last, yet the log reads a, b, c.
            for (name, delayTurns) in [("a", 50), ("b", 10), ("c", 0)] {
                graph.addNode(name) { _, _ in
                    await rendezvous.arrive()
                    for _ in 0..<delayTurns { await Task.yield() }
                    return .update(\.log, [name])
                }
                graph.addEdge(START, name)
                graph.addEdge(name, END)
            }
            let result = try await graph.compile().invoke(StateUpdate())
            #expect(result.state.log == ["a", "b", "c"])
        }
    }

    @Test("a write to a key path missing from the schema is a clear error")
    func undeclaredField() async throws {
        struct S: GraphState {
            var declared = 0
            var hidden = 0
            static let schema: StateSchema<S> = [.field("declared", \.declared)]
        }
        var graph = StateGraph(S.self)
        graph.addNode("n") { _, _ in .update(\.hidden, 1) }
        graph.addEdge(START, "n")
        graph.addEdge("n", END)
        let error = await #expect(throws: GraphError.self) {
            _ = try await graph.compile().invoke(StateUpdate())
        }
        guard case .undeclaredField? = error?.kind else {
            Issue.record("expected undeclaredField, got \(String(describing: error))")
            return
        }
        #expect(error?.node == "n")
    }
}

@Suite("JSON text")
struct JSONTextTests {
    @Test("compact, keys sorted, strings escaped, numbers as JSONEncoder writes them, and it reads back the same")
    func writes() throws {
        let value: JSONValue = [
            "b": [1, 2.5, true, .null, "x"],
            "a": ["quote \" back\\slash\nline\ttab \u{1} é ∑ /": .integer(-7)],
            "c": .object([:]),
            "d": .array([]),
            "e": .number(1e-7),
        ]
        let text = value.jsonText
        #expect(text.hasPrefix(#"{"a":{"quote \" back\\slash\nline\ttab \u0001 é ∑ /":-7},"b":[1,2.5,true,null,"x"],"c":{},"d":[],"e":"#))
        let expectedNumber = String(decoding: try JSONEncoder().encode(1e-7), as: UTF8.self)
        #expect(text.hasSuffix(expectedNumber + "}"))
        #expect(try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) == value)
    }

    @Test("a number JSON cannot hold makes the whole text null, as before")
    func nonFinite() {
        #expect(JSONValue.array([1, .number(.nan)]).jsonText == "null")
        #expect(JSONValue.object(["x": .number(.infinity)]).jsonText == "null")
    }
}
