@testable import AgentGraph
import Foundation
import Testing

/// What D logs: its step, and which of B and C2 the log shows finished since D's last entry.
func joinEntry(_ state: Counter, step: Int) -> String {
    let sinceLastD = state.log.reversed().prefix { !$0.hasPrefix("D@") }.reversed()
    let seen = sinceLastD.filter { $0.hasPrefix("B@") || $0.hasPrefix("C2@") }.map { String($0.prefix { $0 != "@" }) }
    return "D@\(step) saw \(seen.isEmpty ? "nothing new" : seen.joined(separator: "+"))"
}

/// A → B and A → C1 → C2, so B finishes one step before C2; B and C2 lead to D, by one
/// waiting edge or by two plain edges. Nodes log "name@step"; D counts its runs in `count`
/// and loops back to A until it has run `rounds` times. C2 can stop at an interrupt.
func joinGraph(
    waiting: Bool = true, rounds: Int = 1, interruptC2: Bool = false,
    checkpointer: (any CheckpointSaver)? = nil, calls: Calls
) throws -> CompiledGraph<Counter> {
    var graph = StateGraph(Counter.self)
    for name in ["A", "B", "C1"] {
        graph.addNode(name) { _, context in
            calls.hit(name)
            return .update(\.log, ["\(name)@\(context.step)"])
        }
    }
    graph.addNode("C2") { _, context in
        calls.hit("C2")
        if interruptC2 { _ = try context.interrupt("finish C2?", resumeAs: String.self) }
        return .update(\.log, ["C2@\(context.step)"])
    }
    graph.addNode("D") { state, context in
        calls.hit("D")
        return .update(\.log, [joinEntry(state, step: context.step)]).and(\.count, state.count + 1)
    }
    graph.addEdge(START, "A")
    graph.addEdge("A", "B")
    graph.addEdge("A", "C1")
    graph.addEdge("C1", "C2")
    if waiting {
        graph.addEdge(["B", "C2"], "D")
    } else {
        graph.addEdge("B", "D")
        graph.addEdge("C2", "D")
    }
    if rounds > 1 {
        graph.addConditionalEdges("D", to: ["A", END]) { state in state.count < rounds ? ["A"] : [.end] }
    } else {
        graph.addEdge("D", END)
    }
    return try graph.compile(checkpointer: checkpointer)
}

/// START routes to B or to C2 by the input's note; B and C2 wait for each other before D.
/// A run can finish one source without the other, so the barrier outlives the run.
func routedJoinGraph(checkpointer: any CheckpointSaver, calls: Calls) throws -> CompiledGraph<Counter> {
    var graph = StateGraph(Counter.self)
    for name in ["B", "C2"] {
        graph.addNode(name) { _, context in
            calls.hit(name)
            return .update(\.log, ["\(name)@\(context.step)"])
        }
    }
    graph.addNode("D") { state, context in
        calls.hit("D")
        return .update(\.log, [joinEntry(state, step: context.step)])
    }
    graph.addConditionalEdges(START, to: ["B", "C2"]) { state in state.note == "c" ? ["C2"] : ["B"] }
    graph.addEdge(["B", "C2"], "D")
    graph.addEdge("D", END)
    return try graph.compile(checkpointer: checkpointer)
}

/// The problems compiling `graph` reports (empty if it compiles).
func compileProblems(_ graph: StateGraph<Counter>) -> [String] {
    do {
        _ = try graph.compile(name: "join")
        return []
    } catch {
        return error.problems
    }
}

/// A checkpointer that reads checkpoints back as a version without waiting edges wrote
/// them: every body without its "b" key.
func withoutBarriers(_ body: Data) -> Data {
    guard var object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return body }
    object["b"] = nil
    return (try? JSONSerialization.data(withJSONObject: object)) ?? body
}

@Suite("Waiting edges")
struct WaitingEdgeTests {
    static let oneRound = ["A@0", "B@1", "C1@1", "C2@2", "D@3 saw B+C2"]

    @Test("a waiting edge runs its target once, after both sources, though they finish in different steps")
    func runsOnceAfterBoth() async throws {
        let calls = Calls()
        let result = try await joinGraph(calls: calls).invoke(StateUpdate())
        #expect(result.status == .completed)
        #expect(result.state.log == Self.oneRound)
        #expect(result.state.count == 1)
        #expect(result.steps == 4)
        for name in ["A", "B", "C1", "C2", "D"] { #expect(calls[name] == 1, "\(name) ran \(calls[name]) times") }
    }

    @Test("plain edges from both sources run the target after each of them: twice")
    func plainEdgesRunTwice() async throws {
        let calls = Calls()
        let result = try await joinGraph(waiting: false, calls: calls).invoke(StateUpdate())
        // The first D runs beside C2, before C2 has finished; the second after it.
        #expect(result.state.log == ["A@0", "B@1", "C1@1", "C2@2", "D@2 saw B", "D@3 saw nothing new"])
        #expect(result.state.count == 2)
        #expect(calls["D"] == 2)
        #expect(calls["B"] == 1)
        #expect(calls["C2"] == 1)
    }

    @Test("sources reached by a router and by a node's goto count when they finish")
    func conditionalSources() async throws {
        let calls = Calls()
        var graph = StateGraph(Counter.self)
        graph.addNode("A") { _, context in .update(\.log, ["A@\(context.step)"]) }
        graph.addNode("B") { _, context in .update(\.log, ["B@\(context.step)"]) }
        graph.addNode("C1", destinations: ["C2"]) { _, context in
            var update = StateUpdate<Counter>.update(\.log, ["C1@\(context.step)"])
            update.goto = ["C2"]
            return update
        }
        graph.addNode("C2") { _, context in .update(\.log, ["C2@\(context.step)"]) }
        graph.addNode("D") { state, context in
            calls.hit("D")
            return .update(\.log, [joinEntry(state, step: context.step)])
        }
        graph.addEdge(START, "A")
        graph.addConditionalEdges("A", to: ["B", "C1", END]) { _ in ["B", "C1"] }
        graph.addEdge(["B", "C2"], "D")
        graph.addEdge("D", END)
        let result = try await graph.compile().invoke(StateUpdate())
        #expect(result.state.log == Self.oneRound)
        #expect(calls["D"] == 1)
    }

    @Test("an interrupt in C2 after B finished resumes from the checkpoint and runs D once", arguments: SaverKind.available)
    func interruptBetweenSources(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let calls = Calls()
            let stopped = try await joinGraph(interruptC2: true, checkpointer: saver, calls: calls)
                .invoke(StateUpdate(), config: config("join-interrupt"))
            #expect(stopped.status == .interrupted)
            #expect(stopped.interrupts.map(\.node) == ["C2"])
            #expect(stopped.state.log == ["A@0", "B@1", "C1@1"])
            #expect(calls["D"] == 0)

            // A new graph, as a new process would build: only the checkpoint says B finished.
            let graph = try joinGraph(interruptC2: true, checkpointer: saver, calls: calls)
            #expect(try await graph.state(thread: "join-interrupt")?.next == ["C2"])
            let done = try await graph.invoke(.resume("yes"), config: config("join-interrupt"))
            #expect(done.status == .completed)
            #expect(done.state.log == Self.oneRound)
            #expect(calls["D"] == 1)
            #expect(calls["B"] == 1)
            #expect(calls["C2"] == 2)
        }
    }

    @Test("a crash after B's step was stored and before C2's resumes and runs D once", arguments: SaverKind.available)
    func crashBetweenSources(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let calls = Calls()
            let clock = ManualClock()
            // Stored: the input, A's step, B and C1's step. C2's step is lost with the process.
            let crashing = CrashingSaver(saver, allowedPuts: 3)
            await #expect(throws: CrashingSaver.SimulatedCrash.self) {
                _ = try await joinGraph(checkpointer: crashing, calls: calls)
                    .invoke(StateUpdate(), config: config("join-crash", clock: clock, durability: .sync))
            }
            #expect(calls["C2"] == 1)
            #expect(calls["D"] == 0)

            let graph = try joinGraph(checkpointer: saver, calls: calls)
            let stored = try #require(try await graph.state(thread: "join-crash"))
            #expect(stored.state.log == ["A@0", "B@1", "C1@1"])
            #expect(stored.next == ["C2"])
            clock.advance(61)
            let resumed = try await graph.invoke(.continue, config: config("join-crash", clock: clock))
            #expect(resumed.status == .completed)
            #expect(resumed.state.log == Self.oneRound)
            #expect(calls["D"] == 1)
            #expect(calls["B"] == 1)
            #expect(calls["C2"] == 2)
        }
    }

    @Test("a router failing in the step that completes the join: continuing the failed step runs D once")
    func failedStepKeepsTheBarrier() async throws {
        let calls = Calls()
        var graph = StateGraph(Counter.self)
        for name in ["A", "B", "C1", "C2", "E"] {
            graph.addNode(name) { _, context in
                calls.hit(name)
                return .update(\.log, ["\(name)@\(context.step)"])
            }
        }
        graph.addNode("D") { state, context in
            calls.hit("D")
            return .update(\.log, [joinEntry(state, step: context.step)])
        }
        graph.addEdge(START, "A")
        graph.addEdge("A", "B")
        graph.addEdge("A", "C1")
        graph.addEdge("C1", "C2")
        graph.addEdge("C1", "E")
        graph.addEdge(["B", "C2"], "D")
        graph.addEdge("D", END)
        // E runs beside C2 and is routed after it: its router fails once, after C2 completed the join.
        graph.addConditionalEdges("E", to: [END]) { _ in
            calls.hit("router after E")
            if calls["router after E"] == 1 { throw Flaky() }
            return [.end]
        }
        let compiled = try graph.compile(checkpointer: InMemorySaver())
        await #expect(throws: GraphError.self) { _ = try await compiled.invoke(StateUpdate(), config: config("join-failed")) }
        #expect(try await compiled.state(thread: "join-failed")?.next == ["C2", "E"])
        let done = try await compiled.invoke(.continue, config: config("join-failed"))
        #expect(done.status == .completed)
        #expect(done.state.log == ["A@0", "B@1", "C1@1", "C2@2", "E@2", "D@3 saw B+C2"])
        #expect(calls["D"] == 1)
        #expect(calls["C2"] == 1)
    }

    @Test("the barrier resets once the target runs: a loop through the join runs D after both sources each time", arguments: SaverKind.available)
    func loopThroughJoin(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let calls = Calls()
            let result = try await joinGraph(rounds: 2, checkpointer: saver, calls: calls)
                .invoke(StateUpdate(), config: config("join-loop"))
            #expect(result.status == .completed)
            #expect(result.state.log == Self.oneRound + ["A@4", "B@5", "C1@5", "C2@6", "D@7 saw B+C2"])
            #expect(result.state.count == 2)
            for name in ["A", "B", "C1", "C2", "D"] { #expect(calls[name] == 2, "\(name) ran \(calls[name]) times") }
        }
    }

    @Test("the barrier belongs to the thread: a source finished in an earlier run still counts, once", arguments: SaverKind.available)
    func barrierOutlivesTheRun(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let calls = Calls()
            let graph = try routedJoinGraph(checkpointer: saver, calls: calls)
            let first = try await graph.invoke(.update(\.note, "b"), config: config("join-thread"))
            #expect(first.status == .completed)
            #expect(first.state.log == ["B@0"])
            #expect(calls["D"] == 0)
            let second = try await graph.invoke(.update(\.note, "c"), config: config("join-thread"))
            #expect(second.state.log == ["B@0", "C2@2", "D@3 saw B+C2"])
            #expect(calls["D"] == 1)
            // D consumed the barrier: C2 alone does not run it again.
            let third = try await graph.invoke(.update(\.note, "c"), config: config("join-thread"))
            #expect(third.state.log == ["B@0", "C2@2", "D@3 saw B+C2", "C2@5"])
            #expect(calls["D"] == 1)
        }
    }

    @Test("updating the state as a source counts as that source finishing")
    func updateStateAsSource() async throws {
        let calls = Calls()
        let graph = try routedJoinGraph(checkpointer: InMemorySaver(), calls: calls)
        _ = try await graph.invoke(.update(\.note, "b"), config: config("join-fork"))
        let fork = try await graph.updateState(thread: "join-fork", update: .update(\.log, ["C2@by-hand"]), asNode: "C2")
        #expect(try await graph.state(thread: "join-fork", checkpointID: fork)?.next == ["D"])
        let done = try await graph.invoke(.continue, config: config("join-fork"))
        #expect(done.state.log == ["B@0", "C2@by-hand", "D@2 saw B+C2"])
        #expect(calls["C2"] == 0)
        #expect(calls["D"] == 1)
    }

    @Test("a checkpoint written without barriers (by an older version) loads as no source finished")
    func olderCheckpointsLoad() async throws {
        let old = Data(#"{"w":[],"x":[{"n":"C2","i":"C2@2"}]}"#.utf8)
        let body = try JSONCoding.decoder.decode(CheckpointBody<Counter>.self, from: old)
        #expect(body.barriers == nil)
        #expect(body.next.map(\.node) == ["C2"])

        // A thread whose checkpoints have no barriers resumes; B's finish is not on record, so
        // D waits for it.
        let calls = Calls()
        let saver = DamagingSaver(damage: withoutBarriers)
        _ = try await joinGraph(interruptC2: true, checkpointer: saver, calls: calls).invoke(StateUpdate(), config: config("old"))
        let done = try await joinGraph(interruptC2: true, checkpointer: saver, calls: calls).invoke(.resume("yes"), config: config("old"))
        #expect(done.status == .completed)
        #expect(done.state.log == ["A@0", "B@1", "C1@1", "C2@2"])
        #expect(calls["D"] == 0)
    }

    @Test("barriers in a checkpoint body read back the same from the hand-written and the encoder's JSON")
    func barrierEncoding() throws {
        var body = CheckpointBody<Counter>()
        body.next = [TaskRecord(node: "C2", id: "C2@2", payload: nil)]
        body.barriers = [
            BarrierRecord(to: "D \"quoted\"", from: ["B\\", "C\n2", "E"], done: ["B\\", "E"]),
            BarrierRecord(to: "F", from: ["G", "H"], done: ["H"]),
        ]
        let fast = try JSONCoding.decoder.decode(CheckpointBody<Counter>.self, from: try body.encoded())
        #expect(fast.barriers == body.barriers)
        #expect(fast.next.map(\.id) == ["C2@2"])
        let slow = try JSONCoding.decoder.decode(CheckpointBody<Counter>.self, from: try JSONCoding.encoder.encode(body))
        #expect(slow.barriers == body.barriers)
    }

    @Test("a waiting edge from an unknown node is refused")
    func unknownSource() {
        var graph = StateGraph(Counter.self)
        for name in ["B", "D"] { graph.addNode(name) { _, _ in StateUpdate() } }
        graph.addEdge(START, "B")
        graph.addEdge(["B", "ghost"], "D")
        graph.addEdge("D", END)
        #expect(compileProblems(graph) == ["waiting edge from unknown node 'ghost' (to 'D')"])
    }

    @Test("a waiting edge with no sources is refused")
    func emptySources() {
        var graph = StateGraph(Counter.self)
        for name in ["B", "D"] { graph.addNode(name) { _, _ in StateUpdate() } }
        graph.addEdge(START, "B")
        graph.addEdge("B", "D")
        graph.addEdge([], "D")
        graph.addEdge("D", END)
        #expect(compileProblems(graph) == ["waiting edge to 'D' has no sources: list the nodes it waits for"])
    }

    @Test("END, START, a repeated source, and an unknown, END, START or Send target are refused, all listed at once")
    func otherBadWaitingEdges() {
        struct Job: Codable, Sendable { let n: Int }
        var graph = StateGraph(Counter.self)
        for name in ["B", "C", "D"] { graph.addNode(name) { _, _ in StateUpdate() } }
        graph.addNode("P", payload: Job.self) { _, _, _ in StateUpdate() }
        graph.addEdge(START, "B")
        graph.addEdge(START, "C")
        graph.addConditionalEdges("B", to: ["P"]) { _ in [.send("P", Job(n: 1))] }
        graph.addEdge(["B", "C"], "D")
        graph.addEdge("P", END)
        graph.addEdge("D", END)
        graph.addEdge([END, "B"], "D")
        graph.addEdge([START, "B"], "D")
        graph.addEdge(["B", "C", "B"], "D")
        graph.addEdge(["B", "C"], END)
        graph.addEdge(["B", "C"], START)
        graph.addEdge(["B", "C"], "nowhere")
        graph.addEdge(["B", "C"], "P")
        #expect(compileProblems(graph) == [
            "a waiting edge leaves END (to 'D')",
            "waiting edge to 'D' waits on START, which is not a node: use a plain edge from START",
            "waiting edge to 'D' lists 'B' twice",
            "waiting edge from 'B', 'C' ends at END, which does not run: give each source its own edge to END",
            "a waiting edge enters START (from 'B', 'C')",
            "waiting edge to unknown node 'nowhere' (from 'B', 'C')",
            "node 'P' takes a Send payload; reach it with Route.send, not a waiting edge from 'B', 'C'",
        ])
    }

    @Test("a one-source list is a plain edge: validated as one, and its target runs each time the source finishes")
    func oneSourceIsPlainEdge() async throws {
        var broken = StateGraph(Counter.self)
        broken.addNode("D") { _, _ in StateUpdate() }
        broken.addEdge(START, "D")
        broken.addEdge(["ghost"], "D")
        broken.addEdge("D", END)
        #expect(compileProblems(broken) == ["edge from unknown node 'ghost' (to 'D')"])

        let calls = Calls()
        var graph = StateGraph(Counter.self)
        graph.addNode("B") { state, context in .update(\.log, ["B@\(context.step)"]).and(\.count, state.count + 1) }
        graph.addNode("D") { _, context in
            calls.hit("D")
            return .update(\.log, ["D@\(context.step)"])
        }
        graph.addEdge(START, "B")
        graph.addConditionalEdges("B", to: ["B", END]) { state in state.count < 2 ? ["B"] : [.end] }
        graph.addEdge(["B"], "D")
        graph.addEdge("D", END)
        let result = try await graph.compile().invoke(StateUpdate())
        #expect(result.state.log == ["B@0", "B@1", "D@1", "D@2"])
        #expect(calls["D"] == 2)
    }
}
