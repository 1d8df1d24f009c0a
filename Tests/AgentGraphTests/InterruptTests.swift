import AgentGraph
import Foundation
import Testing

struct Order: GraphState {
    var item = ""
    var approved: Bool?
    var receipt: String?
    var audit: [String] = []

    static let schema: StateSchema<Order> = [
        .field("item", \.item),
        .field("approved", \.approved),
        .field("receipt", \.receipt),
        .field("audit", \.audit, .append),
    ]
}

/// charge-card (a side effect wrapped as a task), then ask for approval, then ship.
func checkoutGraph(checkpointer: any CheckpointSaver, calls: Calls, secondQuestion: Bool = false) throws -> CompiledGraph<Order> {
    var graph = StateGraph(Order.self)
    graph.addNode("checkout") { state, context in
        let receipt = try await context.task("charge-card") { () async throws -> String in
            calls.hit("charge-card")
            return "receipt-for-\(state.item)"
        }
        let question: [String: String] = ["question": "ship \(state.item)?", "receipt": receipt]
        let answer = try context.interrupt(question, resumeAs: String.self)
        var audit = ["answer \(answer)"]
        if secondQuestion {
            let sure = try context.interrupt("really?", resumeAs: Bool.self)
            audit.append("sure \(sure)")
        }
        calls.hit("checkout-finished")
        return .update(\.approved, answer == "yes").and(\.receipt, receipt).and(\.audit, audit)
    }
    graph.addNode("ship") { state, _ in .update(\.audit, [state.approved == true ? "shipped" : "cancelled"]) }
    graph.addEdge(START, "checkout")
    graph.addEdge("checkout", "ship")
    graph.addEdge("ship", END)
    return try graph.compile(checkpointer: checkpointer)
}

@Suite("Interrupts and breakpoints")
struct InterruptTests {
    @Test("interrupt stops the run with its payload and a checkpoint; resuming with a value continues", arguments: SaverKind.available)
    func interruptAndResume(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let calls = Calls()
            let graph = try checkoutGraph(checkpointer: saver, calls: calls)
            let stopped = try await graph.invoke(.update(\.item, "book"), config: config("o1"))
            #expect(stopped.status == .interrupted)
            let interrupt = try #require(stopped.interrupts.first)
            #expect(interrupt.node == "checkout")
            #expect(interrupt.kind == .node)
            #expect(interrupt.payload?["question"] == "ship book?")
            #expect(interrupt.payload?["receipt"] == "receipt-for-book")
            let snapshot = try await graph.state(thread: "o1")
            #expect(snapshot?.interrupts == stopped.interrupts)
            #expect(snapshot?.next == ["checkout"])
            #expect(snapshot?.checkpointID == stopped.checkpointID)

            let done = try await graph.invoke(.resume("yes"), config: config("o1"))
            #expect(done.status == .completed)
            #expect(done.state.audit == ["answer yes", "shipped"])
            #expect(done.state.receipt == "receipt-for-book")
            #expect(calls["charge-card"] == 1)
        }
    }

    @Test("a wrapped task is not run again, however often the interrupted run is resumed", arguments: SaverKind.available)
    func resumedTwiceRunsTaskOnce(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in
            let calls = Calls()
            let graph = try checkoutGraph(checkpointer: saver, calls: calls, secondQuestion: true)
            let first = try await graph.invoke(.update(\.item, "lamp"), config: config("o2"))
            #expect(first.interrupts.first?.payload?["question"] == "ship lamp?")
            // First resume: the node runs again from its start and stops at its second question.
            let second = try await graph.invoke(.resume("yes"), config: config("o2"))
            #expect(second.status == .interrupted)
            #expect(second.interrupts.first?.payload == "really?")
            #expect(calls["charge-card"] == 1)
            // Second resume finishes.
            let done = try await graph.invoke(.resume(true), config: config("o2"))
            #expect(done.state.audit == ["answer yes", "sure true", "shipped"])
            #expect(calls["charge-card"] == 1)
            // Resuming the first interrupt's checkpoint again (time travel) still does not charge again.
            var again = config("o2")
            again.checkpointID = first.checkpointID
            let replay = try await graph.invoke(.resume("no"), config: again)
            #expect(replay.status == .interrupted)
            var finish = config("o2")
            finish.checkpointID = replay.checkpointID
            let replayDone = try await graph.invoke(.resume(false), config: finish)
            #expect(replayDone.state.audit == ["answer no", "sure false", "cancelled"])
            #expect(calls["charge-card"] == 1)
            #expect(calls["checkout-finished"] == 2)
        }
    }

    @Test("resuming needs a value, and only an interrupted thread can be resumed")
    func resumeErrors() async throws {
        let calls = Calls()
        let graph = try checkoutGraph(checkpointer: InMemorySaver(), calls: calls)
        _ = try await graph.invoke(.update(\.item, "pen"), config: config("o3"))
        let missing = await #expect(throws: GraphError.self) { _ = try await graph.invoke(.continue, config: config("o3")) }
        guard case .resumeRequired? = missing?.kind else {
            Issue.record("expected resumeRequired, got \(String(describing: missing))")
            return
        }
        let unknown = await #expect(throws: GraphError.self) {
            _ = try await graph.invoke(.resumeByID(["nope": "yes"]), config: config("o3"))
        }
        #expect(unknown?.description.contains("no interrupt 'nope' is pending") == true)
        let pending = try #require(try await graph.state(thread: "o3")?.interrupts.first)
        let byID = try await graph.invoke(.resumeByID([pending.id: "yes"]), config: config("o3"))
        #expect(byID.state.audit == ["answer yes", "shipped"])
        let notInterrupted = await #expect(throws: GraphError.self) {
            _ = try await graph.invoke(.resumeByID([pending.id: "yes"]), config: config("o3"))
        }
        guard case .invalidResume? = notInterrupted?.kind else {
            Issue.record("expected invalidResume, got \(String(describing: notInterrupted))")
            return
        }
    }

    @Test("when one branch interrupts, its finished siblings are not rerun on resume")
    func siblingsNotRerun() async throws {
        let calls = Calls()
        var graph = StateGraph(Order.self)
        graph.addNode("lookup") { _, _ in
            calls.hit("lookup")
            return .update(\.audit, ["looked up"])
        }
        graph.addNode("ask") { _, context in
            let answer = try context.interrupt("approve?", resumeAs: String.self)
            return .update(\.audit, ["asked: \(answer)"])
        }
        graph.addEdge(START, "lookup")
        graph.addEdge(START, "ask")
        graph.addEdge("lookup", END)
        graph.addEdge("ask", END)
        let compiled = try graph.compile(checkpointer: InMemorySaver())
        let stopped = try await compiled.invoke(StateUpdate(), config: config("par"))
        #expect(stopped.status == .interrupted)
        #expect(stopped.state.audit.isEmpty)
        let done = try await compiled.invoke(.resume("ok"), config: config("par"))
        #expect(done.state.audit == ["looked up", "asked: ok"])
        #expect(calls["lookup"] == 1)
    }

    @Test("static breakpoints stop before and after named nodes; continuing goes on")
    func breakpoints() async throws {
        var graph = StateGraph(Counter.self)
        for name in ["a", "b", "c"] { graph.addNode(name) { _, _ in .update(\.log, [name]) } }
        graph.addEdge(START, "a")
        graph.addEdge("a", "b")
        graph.addEdge("b", "c")
        graph.addEdge("c", END)
        let compiled = try graph.compile(checkpointer: InMemorySaver(), interruptBefore: ["b"], interruptAfter: ["b"])
        let before = try await compiled.invoke(StateUpdate(), config: config("bp"))
        #expect(before.status == .interrupted)
        #expect(before.interrupts.map(\.kind) == [.before])
        #expect(before.state.log == ["a"])
        #expect(try await compiled.state(thread: "bp")?.next == ["b"])
        let after = try await compiled.invoke(.continue, config: config("bp"))
        #expect(after.interrupts.map(\.kind) == [.after])
        #expect(after.state.log == ["a", "b"])
        let done = try await compiled.invoke(.continue, config: config("bp"))
        #expect(done.status == .completed)
        #expect(done.state.log == ["a", "b", "c"])
    }

    @Test("an interrupt inside a subgraph stops the parent; resuming resumes the subgraph where it stopped")
    func subgraphInterrupt() async throws {
        let calls = Calls()
        let saver = InMemorySaver()
        var child = StateGraph(Order.self)
        child.addNode("prepare") { _, _ in
            calls.hit("prepare")
            return .update(\.audit, ["prepared"])
        }
        child.addNode("confirm") { _, context in
            let answer = try context.interrupt("confirm?", resumeAs: String.self)
            return .update(\.audit, ["confirmed \(answer)"])
        }
        child.addEdge(START, "prepare")
        child.addEdge("prepare", "confirm")
        child.addEdge("confirm", END)
        let compiledChild = try child.compile(checkpointer: saver)

        var parent = StateGraph(Counter.self)
        parent.addSubgraph("inner", compiledChild, input: { _ in StateUpdate() }, output: { order in .update(\.log, order.audit) })
        parent.addEdge(START, "inner")
        parent.addEdge("inner", END)
        let compiled = try parent.compile(checkpointer: saver)
        let stopped = try await compiled.invoke(StateUpdate(), config: config("nest"))
        #expect(stopped.status == .interrupted)
        #expect(stopped.interrupts.first?.payload == "confirm?")
        let done = try await compiled.invoke(.resume("sure"), config: config("nest"))
        #expect(done.state.log == ["prepared", "confirmed sure"])
        #expect(calls["prepare"] == 1)
    }
}
