import AgentGraph
import Foundation
import Synchronization
import Testing

@Suite("Graph building, validation and execution")
struct GraphTests {
    @Test("compiling lists every problem at once")
    func validationListsEveryProblem() {
        var graph = StateGraph(Counter.self)
        graph.addNode("a") { _, _ in StateUpdate() }
        graph.addNode("island") { _, _ in StateUpdate() }
        graph.addNode("deadEnd") { _, _ in StateUpdate() }
        graph.addNode("loop") { _, _ in StateUpdate() }
        graph.addEdge("a", "ghost")
        graph.addEdge("a", "deadEnd")
        graph.addEdge("a", "loop")
        graph.addEdge("loop", "loop")
        graph.addEdge("island", END)
        do {
            _ = try graph.compile(interruptBefore: ["nowhere"], name: "broken")
            Issue.record("compile accepted a broken graph")
        } catch {
            let problems = error.problems
            #expect(problems.contains("no entry: add an edge from START to the first node"))
            #expect(problems.contains("edge to unknown node 'ghost' (from 'a')"))
            #expect(problems.contains("node 'island' is not reachable from START"))
            #expect(problems.contains("node 'deadEnd' has no way out: add an edge from it (to END or another node)"))
            #expect(problems.contains("node 'loop' has no path to END"))
            #expect(problems.contains("breakpoint on unknown node 'nowhere'"))
            #expect(error.description.hasPrefix("graph 'broken' is invalid:"))
        }
    }

    @Test("a valid graph compiles; a conditional destination counts as a way out")
    func validGraphCompiles() throws {
        _ = try counterLoop(limit: 3)
    }

    @Test("static edges run nodes in sequence; a cycle ends by its router")
    func linearAndCycle() async throws {
        var graph = StateGraph(Counter.self)
        graph.addNode("first") { _, _ in .update(\.log, ["first"]) }
        graph.addNode("second") { _, _ in .update(\.log, ["second"]) }
        graph.addEdge(START, "first")
        graph.addEdge("first", "second")
        graph.addEdge("second", END)
        let linear = try await graph.compile().invoke(StateUpdate())
        #expect(linear.state.log == ["first", "second"])
        #expect(linear.status == .completed)
        #expect(linear.steps == 2)

        let loop = try await counterLoop(limit: 5).invoke(StateUpdate())
        #expect(loop.state.count == 5)
        #expect(loop.state.log == ["inc1", "inc2", "inc3", "inc4", "inc5"])
    }

    @Test("a loop that never ends stops at the recursion limit with a clear error")
    func recursionLimit() async throws {
        let graph = try counterLoop(limit: .max)
        let error = await #expect(throws: GraphError.self) {
            _ = try await graph.invoke(StateUpdate(), config: RunConfig(recursionLimit: 7))
        }
        guard case .recursionLimit(let limit)? = error?.kind else {
            Issue.record("expected recursionLimit, got \(String(describing: error))")
            return
        }
        #expect(limit == 7)
        #expect(error?.node == "inc")
        #expect(error?.description.contains("recursion limit of 7 steps") == true)
    }

    @Test("nodes ready in one step run concurrently and their updates merge at the boundary")
    func parallelStep() async throws {
        let rendezvous = Rendezvous(parties: 2)
        var graph = StateGraph(Counter.self, defaults: NodePolicy(timeout: .seconds(30)))
        for name in ["a", "b"] {
            graph.addNode(name) { state, _ in
                // Each waits for the other to start: run one after the other, they would time out.
                await rendezvous.arrive()
                return .update(\.total, 1).and(\.log, ["\(name) saw \(state.total)"])
            }
            graph.addEdge(START, name)
            graph.addEdge(name, "join")
        }
        graph.addNode("join") { state, _ in .update(\.log, ["join saw \(state.total)"]) }
        graph.addEdge("join", END)
        let result = try await graph.compile().invoke(StateUpdate())
        #expect(result.state.log == ["a saw 0", "b saw 0", "join saw 2"])
        #expect(result.steps == 2)
    }

    @Test("a router can send N payloads to one node (map) whose updates a reducer gathers (reduce)")
    func mapReduce() async throws {
        struct Job: Codable, Sendable { let n: Int }
        var graph = StateGraph(Counter.self)
        graph.addNode("plan") { _, _ in .update(\.note, "planned") }
        graph.addNode("square", payload: Job.self) { job, _, _ in .update(\.total, job.n * job.n) }
        graph.addNode("report") { state, _ in .update(\.log, ["sum \(state.total)"]) }
        graph.addEdge(START, "plan")
        graph.addConditionalEdges("plan", to: ["square"]) { _ in (1...100).map { .send("square", Job(n: $0)) } }
        graph.addEdge("square", "report")
        graph.addEdge("report", END)
        let result = try await graph.compile().invoke(StateUpdate())
        #expect(result.state.total == 338_350)
        #expect(result.state.log == ["sum 338350"])
        #expect(result.steps == 3)
    }

    @Test("a node can route by itself to a declared destination; an undeclared one is refused")
    func gotoRouting() async throws {
        var graph = StateGraph(Counter.self)
        graph.addNode("decide", destinations: ["yes", "no"]) { state, _ in
            var update = StateUpdate<Counter>.update(\.note, "decided")
            update.goto = [state.count > 0 ? "yes" : "no"]
            return update
        }
        graph.addNode("yes") { _, _ in .update(\.log, ["yes"]) }
        graph.addNode("no") { _, _ in .update(\.log, ["no"]) }
        graph.addNode("rogue", destinations: ["yes"]) { _, _ in .goto("no") }
        graph.addEdge(START, "decide")
        graph.addEdge("yes", END)
        graph.addEdge("no", "rogue")
        let compiled = try graph.compile()
        let yes = try await compiled.invoke(.update(\.count, 1))
        #expect(yes.state.log == ["yes"])
        let error = await #expect(throws: GraphError.self) { _ = try await compiled.invoke(.update(\.count, 0)) }
        guard case .invalidRoute? = error?.kind else {
            Issue.record("expected invalidRoute, got \(String(describing: error))")
            return
        }
        #expect(error?.node == "rogue")
    }

    @Test("a router returning a node it did not declare fails the run")
    func undeclaredRouterDestination() async throws {
        var graph = StateGraph(Counter.self)
        graph.addNode("a") { _, _ in StateUpdate() }
        graph.addNode("b") { _, _ in StateUpdate() }
        graph.addEdge(START, "a")
        graph.addEdge(START, "b")
        graph.addConditionalEdges("a", to: [END]) { _ in ["b"] }
        graph.addEdge("b", END)
        let error = await #expect(throws: GraphError.self) { _ = try await graph.compile().invoke(StateUpdate()) }
        #expect(error?.description.contains("not among its destinations") == true)
    }

    @Test("a failing node cancels its running siblings, and the run reports the failure, not the cancellation")
    func failureCancelsSiblings() async throws {
        let sawCancellation = Mutex(false)
        var graph = StateGraph(Counter.self, defaults: NodePolicy(timeout: .seconds(120)))
        graph.addNode("slow") { _, _ in
            do {
                try await Task.sleep(for: .seconds(3600))
            } catch {
                sawCancellation.withLock { $0 = error is CancellationError }
                throw error
            }
            return StateUpdate()
        }
        graph.addNode("bad") { _, _ in throw Flaky() }
        graph.addEdge(START, "slow")
        graph.addEdge(START, "bad")
        graph.addEdge("slow", END)
        graph.addEdge("bad", END)
        let error = await #expect(throws: GraphError.self) { _ = try await graph.compile().invoke(StateUpdate()) }
        #expect(error?.node == "bad")
        #expect(error?.underlying is Flaky)
        #expect(sawCancellation.withLock { $0 })
    }

    @Test("a node's error says which node, step and thread failed and why")
    func typedNodeFailure() async throws {
        struct Boom: Error, CustomStringConvertible { var description: String { "the model is down" } }
        var graph = StateGraph(Counter.self)
        graph.addNode("ok") { _, _ in .update(\.count, 1) }
        graph.addNode("bad") { _, _ in throw Boom() }
        graph.addEdge(START, "ok")
        graph.addEdge("ok", "bad")
        graph.addEdge("bad", END)
        let compiled = try graph.compile(checkpointer: InMemorySaver())
        let error = await #expect(throws: GraphError.self) {
            _ = try await compiled.invoke(StateUpdate(), config: RunConfig(threadID: "t-err"))
        }
        guard case .nodeFailed? = error?.kind else {
            Issue.record("expected nodeFailed, got \(String(describing: error))")
            return
        }
        #expect(error?.node == "bad")
        #expect(error?.step == 1)
        #expect(error?.thread == "t-err")
        #expect(error?.underlying is Boom)
        #expect(error?.description == "node failed: the model is down (node 'bad', step 1, thread 't-err')")
        let snapshot = try await compiled.state(thread: "t-err")
        #expect(snapshot?.source == "error")
        #expect(snapshot?.next == ["bad"])
        #expect(snapshot?.state.count == 1)
    }

    @Test("a compiled graph runs as a node of another, checkpointed under its own namespace", arguments: SaverKind.available)
    func subgraph(kind: SaverKind) async throws {
        try await withSaver(kind) { saver in try await subgraph(saver: saver) }
    }

    func subgraph(saver: any CheckpointSaver) async throws {
        var child = StateGraph(Chat.self)
        child.addNode("draft") { state, _ in
            .update(\.messages, [ChatMessage(id: "d", role: "ai", text: "draft of \(state.messages.count)")]).and(\.turns, 1)
        }
        child.addNode("polish") { state, _ in
            .update(\.messages, [ChatMessage(id: "d", role: "ai", text: state.messages.last!.text + ", polished")])
        }
        child.addEdge(START, "draft")
        child.addEdge("draft", "polish")
        child.addEdge("polish", END)
        let compiledChild = try child.compile(checkpointer: saver, name: "writer")

        var parent = StateGraph(Counter.self)
        parent.addNode("prepare") { _, _ in .update(\.count, 2) }
        parent.addSubgraph("write", compiledChild, input: { state in
            .update(\.messages, (0..<state.count).map { ChatMessage(id: "\($0)", role: "user", text: "m\($0)") })
        }, output: { chat in
            .update(\.note, chat.messages.last?.text)
        })
        parent.addEdge(START, "prepare")
        parent.addEdge("prepare", "write")
        parent.addEdge("write", END)
        let compiled = try parent.compile(checkpointer: saver)
        // Exit durability puts parent and subgraph checkpoints into one batch.
        let result = try await compiled.invoke(StateUpdate(), config: RunConfig(threadID: "sub", durability: .exit))
        #expect(result.state.note == "draft of 2, polished")
        let childHistory = try await compiledChild.history(thread: "sub", namespace: "write@1")
        #expect(childHistory.map(\.source) == ["loop", "loop", "input"])
        #expect(childHistory.first?.state.messages.count == 3)
        let parentHistory = try await compiled.history(thread: "sub")
        #expect(parentHistory.count == 3)
    }
}
