import AgentGraph
import Foundation
import Testing

/// Cases found in review: each failed before its fix.
@Suite("Resume edge cases")
struct RegressionTests {
    @Test("editing an interrupted thread's state keeps its interrupt and task results; resuming does not repeat the task")
    func updateStateOnInterruptedThread() async throws {
        let calls = Calls()
        let graph = try checkoutGraph(checkpointer: InMemorySaver(), calls: calls)
        _ = try await graph.invoke(.update(\.item, "mug"), config: config("edit"))
        try await graph.updateState(thread: "edit", update: .update(\.audit, ["edited by support"]))
        let edited = try #require(try await graph.state(thread: "edit"))
        #expect(edited.interrupts.count == 1)
        #expect(edited.state.audit == ["edited by support"])
        let done = try await graph.invoke(.resume("yes"), config: config("edit"))
        #expect(done.state.audit == ["edited by support", "answer yes", "shipped"])
        #expect(calls["charge-card"] == 1)
    }

    @Test("resume with a value on a thread that is not interrupted is refused")
    func resumeOnFinishedThread() async throws {
        let graph = try counterLoop(limit: 1, checkpointer: InMemorySaver())
        _ = try await graph.invoke(StateUpdate(), config: config("done"))
        let error = await #expect(throws: GraphError.self) { _ = try await graph.invoke(.resume("x"), config: config("done")) }
        guard case .invalidResume? = error?.kind else {
            Issue.record("expected invalidResume, got \(String(describing: error))")
            return
        }
    }

    @Test("a step resumed after an interrupt does not stop at its before-breakpoint again, nor rerun finished siblings")
    func breakpointNotRepeated() async throws {
        let calls = Calls()
        var graph = StateGraph(Order.self)
        graph.addNode("lookup") { _, _ in
            calls.hit("lookup")
            return .update(\.audit, ["looked up"])
        }
        graph.addNode("review") { _, context in
            let answer = try context.interrupt("ok?", resumeAs: String.self)
            return .update(\.audit, ["reviewed \(answer)"])
        }
        graph.addEdge(START, "lookup")
        graph.addEdge(START, "review")
        graph.addEdge("lookup", END)
        graph.addEdge("review", END)
        let compiled = try graph.compile(checkpointer: InMemorySaver(), interruptBefore: ["review"])
        let atBreakpoint = try await compiled.invoke(StateUpdate(), config: config("bp2"))
        #expect(atBreakpoint.interrupts.map(\.kind) == [.before])
        let atInterrupt = try await compiled.invoke(.continue, config: config("bp2"))
        #expect(atInterrupt.interrupts.map(\.kind) == [.node])
        let done = try await compiled.invoke(.resume("fine"), config: config("bp2"))
        #expect(done.status == .completed)
        #expect(done.state.audit == ["looked up", "reviewed fine"])
        #expect(calls["lookup"] == 1)
    }

    @Test("replaying a parent's older interrupt resumes its subgraph at that interrupt, not afresh")
    func subgraphReplay() async throws {
        let calls = Calls()
        let saver = InMemorySaver()
        var child = StateGraph(Order.self)
        child.addNode("prepare") { _, _ in
            calls.hit("prepare")
            return .update(\.audit, ["prepared"])
        }
        child.addNode("confirm") { _, context in
            .update(\.audit, ["confirmed \(try context.interrupt("confirm?", resumeAs: String.self))"])
        }
        child.addEdge(START, "prepare")
        child.addEdge("prepare", "confirm")
        child.addEdge("confirm", END)
        var parent = StateGraph(Counter.self)
        parent.addSubgraph("inner", try child.compile(checkpointer: saver), input: { _ in StateUpdate() }, output: { .update(\.log, $0.audit) })
        parent.addEdge(START, "inner")
        parent.addEdge("inner", END)
        let compiled = try parent.compile(checkpointer: saver)
        let stopped = try await compiled.invoke(StateUpdate(), config: config("replay"))
        _ = try await compiled.invoke(.resume("first"), config: config("replay"))
        var again = config("replay")
        again.checkpointID = stopped.checkpointID
        let replayed = try await compiled.invoke(.resume("second"), config: again)
        #expect(replayed.status == .completed)
        #expect(replayed.state.log == ["prepared", "confirmed second"])
        #expect(calls["prepare"] == 1)
    }

    @Test("a send whose payload is JSON null survives a checkpoint; big integers and dates read back exactly")
    func exactRoundTrips() async throws {
        struct Stamped: GraphState {
            var seen: [String] = []
            var when = Date(timeIntervalSince1970: 0)
            static let schema: StateSchema<Stamped> = [.field("seen", \.seen, .append), .field("when", \.when)]
        }
        let calls = Calls()
        var graph = StateGraph(Stamped.self)
        graph.addNode("fan") { _, _ in .update(\.when, Date(timeIntervalSince1970: 1_800_000_000.123456)) }
        graph.addNode("worker", payload: String?.self) { payload, _, context in
            let id = try await context.task("allocate") { () async throws -> Int64 in
                calls.hit("allocate")
                return Int64.max - 1
            }
            let answer = try context.interrupt("go?", resumeAs: String.self)
            return .update(\.seen, ["\(payload ?? "nil") \(id) \(answer)"])
        }
        graph.addEdge(START, "fan")
        graph.addConditionalEdges("fan", to: ["worker"]) { _ in [.send("worker", String?.none)] }
        graph.addEdge("worker", END)
        let compiled = try graph.compile(checkpointer: InMemorySaver())
        _ = try await compiled.invoke(StateUpdate(), config: config("exact"))
        let done = try await compiled.invoke(.resume("yes"), config: config("exact"))
        #expect(done.state.seen == ["nil \(Int64.max - 1) yes"])
        #expect(calls["allocate"] == 1)
        let read = try await compiled.state(thread: "exact")
        #expect(read?.state.when == Date(timeIntervalSince1970: 1_800_000_000.123456))
    }

    @Test("a conflict found when merging leaves an error checkpoint with the step's task results")
    func mergeFailureCheckpointed() async throws {
        let calls = Calls()
        var graph = StateGraph(Counter.self)
        graph.addNode("left") { _, context in
            _ = try await context.task("side-effect") { () async throws -> Int in
                calls.hit("side-effect")
                return 1
            }
            return .update(\.note, "L")
        }
        graph.addNode("right") { _, _ in .update(\.note, "R") }
        graph.addEdge(START, "left")
        graph.addEdge(START, "right")
        graph.addEdge("left", END)
        graph.addEdge("right", END)
        let compiled = try graph.compile(checkpointer: InMemorySaver())
        await #expect(throws: GraphError.self) { _ = try await compiled.invoke(StateUpdate(), config: config("conflict")) }
        let snapshot = try #require(try await compiled.state(thread: "conflict"))
        #expect(snapshot.source == "error")
        #expect(snapshot.next == ["left", "right"])
        #expect(snapshot.error?.contains("both wrote field 'note'") == true)
        // Running the step again reuses the task result kept in the error checkpoint.
        await #expect(throws: GraphError.self) { _ = try await compiled.invoke(.continue, config: config("conflict")) }
        #expect(calls["side-effect"] == 1)
    }

    @Test("pruning always keeps the latest checkpoint")
    func pruneKeepsLatest() async throws {
        let graph = try counterLoop(limit: 3, checkpointer: InMemorySaver())
        _ = try await graph.invoke(StateUpdate(), config: config("keep"))
        let deleted = try await graph.pruneHistory(thread: "keep", keepLast: 0)
        #expect(deleted == 3)
        let left = try await graph.history(thread: "keep")
        #expect(left.count == 1)
        #expect(left.first?.state.count == 3)
    }

    @Test("pruning waits for no run: while a run holds the thread it is refused at once, and works once the run is done")
    func pruneDuringRun() async throws {
        let latch = Latch()
        var builder = StateGraph(Counter.self)
        builder.addNode("slow") { state, _ in
            if state.count == 1 { await latch.hold() }
            return .update(\.count, state.count + 1)
        }
        builder.addEdge(START, "slow")
        builder.addEdge("slow", END)
        let graph = try builder.compile(checkpointer: InMemorySaver())
        _ = try await graph.invoke(StateUpdate(), config: config("busy"))
        let running = Task { try await graph.invoke(StateUpdate(), config: config("busy")) }
        await latch.waitUntilHeld()
        let error = await #expect(throws: GraphError.self) { _ = try await graph.pruneHistory(thread: "busy", keepLast: 0) }
        guard case .threadBusy? = error?.kind else {
            Issue.record("expected threadBusy, got \(String(describing: error))")
            latch.open()
            return
        }
        latch.open()
        #expect(try await running.value.state.count == 2)
        #expect(try await graph.pruneHistory(thread: "busy", keepLast: 0) > 0)
    }
}
