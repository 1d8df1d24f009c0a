import AgentGraph
import Foundation
import Synchronization
import Testing

@Suite("Streaming")
struct StreamTests {
    func writerGraph() throws -> CompiledGraph<Counter> {
        var inner = StateGraph(Counter.self)
        inner.addNode("deep") { _, context in
            context.write(token: "from-sub")
            return .update(\.log, ["deep"])
        }
        inner.addEdge(START, "deep")
        inner.addEdge("deep", END)
        let sub = try inner.compile()

        var graph = StateGraph(Counter.self)
        graph.addNode("speak") { _, context in
            for token in ["Hel", "lo"] { context.write(token: token) }
            context.emit(["progress": 0.5])
            return .update(\.log, ["speak"]).and(\.count, 1)
        }
        graph.addSubgraph("sub", sub, input: { _ in StateUpdate() }, output: { .update(\.log, $0.log) })
        graph.addEdge(START, "speak")
        graph.addEdge("speak", "sub")
        graph.addEdge("sub", END)
        return try graph.compile()
    }

    @Test("values after every step, updates per node, tokens (subgraphs' too), custom, debug; finished last")
    func allModes() async throws {
        var values: [[String]] = []
        var updates: [(String, [String])] = []
        var tokens: [(String, String, String)] = []
        var custom: [JSONValue] = []
        var started: [String] = []
        var finishedTasks: [String] = []
        var finished: RunResult<Counter>?
        var eventsAfterFinished = 0
        for try await event in try writerGraph().stream(.update(StateUpdate()), modes: .all) {
            if finished != nil { eventsAfterFinished += 1 }
            switch event {
            case .values(let state, _): values.append(state.log)
            case .update(let update): updates.append((update.node, update.update.fieldNames))
            case .token(let text, let node, let namespace): tokens.append((text, node, namespace))
            case .custom(let value, _, _): custom.append(value)
            case .debug(.taskStarted(let node, _, _, _, _)): started.append(node)
            case .debug(.taskFinished(let node, _, _, _, _, let outcome)): finishedTasks.append("\(node):\(outcome)")
            case .debug(.checkpoint): break
            case .finished(let result): finished = result
            }
        }
        #expect(values == [[], ["speak"], ["speak", "deep"]])
        #expect(updates.map(\.0) == ["speak", "sub"])
        #expect(updates.first?.1 == ["log", "count"])
        #expect(tokens.map(\.0) == ["Hel", "lo", "from-sub"])
        #expect(tokens.last?.1 == "deep")
        #expect(tokens.last?.2 == "sub@1")
        #expect(custom == [["progress": 0.5]])
        #expect(started == ["speak", "sub", "deep"])
        #expect(finishedTasks == ["speak:ok", "deep:ok", "sub:ok"])
        #expect(finished?.status == .completed)
        #expect(finished?.state.log == ["speak", "deep"])
        #expect(eventsAfterFinished == 0)
    }

    @Test("modes filter: only the chosen kinds arrive")
    func modesFilter() async throws {
        var kinds: Set<String> = []
        for try await event in try writerGraph().stream(.update(StateUpdate()), modes: [.tokens]) {
            switch event {
            case .token: kinds.insert("token")
            case .finished: kinds.insert("finished")
            default: kinds.insert("other")
            }
        }
        #expect(kinds == ["token", "finished"])
    }

    @Test("a failing run ends the stream with its error")
    func streamError() async throws {
        var graph = StateGraph(Counter.self)
        graph.addNode("bad") { _, _ in throw Flaky() }
        graph.addEdge(START, "bad")
        graph.addEdge("bad", END)
        let stream = try graph.compile().stream(.update(StateUpdate()))
        await #expect(throws: GraphError.self) {
            for try await _ in stream {}
        }
    }

    @Test("cancelling the consumer cancels the run: the running node sees cancellation")
    func cancellation() async throws {
        let cancelled = Rendezvous(parties: 2)
        let outcome = Mutex("")
        var graph = StateGraph(Counter.self, defaults: NodePolicy(timeout: .seconds(120)))
        graph.addNode("long") { _, context in
            context.write(token: "started")
            do {
                try await Task.sleep(for: .seconds(3600))
            } catch {
                outcome.withLock { $0 = error is CancellationError ? "cancelled" : "\(error)" }
                await cancelled.arrive()
                throw error
            }
            return StateUpdate()
        }
        graph.addEdge(START, "long")
        graph.addEdge("long", END)
        let saver = ReleaseSignallingSaver()
        let compiled = try graph.compile(checkpointer: saver)
        let consumer = Task {
            for try await event in compiled.stream(.update(StateUpdate()), config: config("cancel"), modes: [.tokens]) {
                if case .token = event { return }
            }
        }
        try await consumer.value
        await cancelled.arrive()
        #expect(outcome.withLock { $0 } == "cancelled")
        // The thread is released and its unfinished step checkpointed, so it can be continued.
        let releases = saver.releases
        _ = try await within(30) { () -> String? in
            for await thread in releases where thread == "cancel" { return thread }
            return nil
        }
        let snapshot = try await compiled.state(thread: "cancel")
        #expect(snapshot?.source == "error")
        #expect(snapshot?.next == ["long"])
    }
}
