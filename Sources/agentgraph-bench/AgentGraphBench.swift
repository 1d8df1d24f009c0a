import AgentGraph
import AgentGraphSQL
import ArgumentParser
import Foundation
import SQLiteKit
import Synchronization

/// Measures AgentGraph's overheads in the scenarios LangGraph users measure, prints each
/// figure beside its target, and stops. Build with `-c release`.
@main
struct AgentGraphBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agentgraph-bench",
        abstract: "Per-step overhead, checkpoint cost and size, fan-out and memory of the AgentGraph runtime."
    )

    @Option(help: "Runs of the 10-node linear graph.") var linearRuns = 20_000
    @Option(help: "Runs of the 100-iteration two-node cycle, per checkpointer.") var cycleRuns = 20
    @Option(help: "Runs of the 100-branch fan-out.") var fanoutRuns = 2_000
    @Option(help: "Measurement rounds per figure; the median is printed with the range.") var rounds = 5
    @Option(help: "Scenarios to run (comma-separated letters).") var scenarios = "a,b,c,d"
    @Option(help: "Directory for the SQLite checkpoint file.") var directory = FileManager.default.temporaryDirectory.path

    func run() async throws {
        print("AgentGraph benchmark (release build expected). Each figure: the median of \(rounds) rounds (each a mean over its runs, after a warm-up), with the range.")
        let wanted = Set(scenarios.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        if wanted.contains("a") { try await linear() }
        if wanted.contains("b") { try await cycle() }
        if wanted.contains("c") { try await fanout() }
        if wanted.contains("d") { try await chatStorage() }
        let peak = Self.peakRSS()
        print(String(format: "(e) peak RSS: %.1f MiB (target <= 30 MiB) %@", peak, peak <= 30 ? "met" : "MISSED"))
    }

    // MARK: Scenarios

    struct Count: GraphState {
        var count = 0
        static let schema: StateSchema<Count> = [.field("count", \.count)]
    }

    struct Sum: GraphState {
        var total = 0
        static let schema: StateSchema<Sum> = [.field("total", \.total, .sum)]
    }

    struct Message: Codable, Sendable, Identifiable {
        var id: String
        var role: String
        var text: String
    }

    struct Chat: GraphState {
        var messages: [Message] = []
        var turns = 0
        static let schema: StateSchema<Chat> = [
            .field("messages", \.messages, .mergeByID()),
            .field("turns", \.turns, .sum),
        ]
    }

    func linear() async throws {
        var graph = StateGraph(Count.self)
        var previous = START
        for index in 0..<10 {
            let name = "n\(index)"
            graph.addNode(name) { state, _ in .update(\.count, state.count + 1) }
            graph.addEdge(previous, name)
            previous = name
        }
        graph.addEdge(previous, END)
        let compiled = try graph.compile()
        let input = StateUpdate<Count>()
        for _ in 0..<1_000 { _ = try await compiled.invoke(input) }
        let perStep = try await Rounds.measure(rounds) {
            let started = ContinuousClock.now
            for _ in 0..<linearRuns { _ = try await compiled.invoke(input) }
            return (ContinuousClock.now - started) / (linearRuns * 10)
        }
        print(String(format: "(a) linear graph, 10 trivial nodes: %@ µs per step (target <= 3 µs per step) %@",
                     perStep.text(1), perStep.median <= 3 ? "met" : "MISSED"))
    }

    func cycleGraph(checkpointer: (any CheckpointSaver)?) throws -> CompiledGraph<Count> {
        var graph = StateGraph(Count.self)
        graph.addNode("ping") { state, _ in .update(\.count, state.count + 1) }
        graph.addNode("pong") { state, _ in .update(\.count, state.count + 1) }
        graph.addEdge(START, "ping")
        graph.addEdge("ping", "pong")
        graph.addConditionalEdges("pong", to: ["ping", END]) { state in state.count < 200 ? ["ping"] : [.end] }
        return try graph.compile(checkpointer: checkpointer)
    }

    func cycle() async throws {
        let steps = 200
        let runs = cycleRuns
        func measure(_ graph: CompiledGraph<Count>, durability: Durability, label: String) async throws -> Rounds {
            let threadCounter = Counter()
            @Sendable func once() async throws {
                let thread = "\(label)-\(threadCounter.next())"
                let result = try await graph.invoke(StateUpdate(), config: RunConfig(threadID: thread, recursionLimit: 1_000, durability: durability))
                precondition(result.state.count == steps)
                // In memory, finished threads are let go, as retention would; SQLite keeps them on disk.
                if let memory = graph.checkpointer as? InMemorySaver { try await memory.deleteThread(thread) }
            }
            for _ in 0..<3 { try await once() }
            return try await Rounds.measure(rounds) {
                let started = ContinuousClock.now
                for _ in 0..<runs { try await once() }
                return (ContinuousClock.now - started) / (runs * steps)
            }
        }
        let none = try await measure(cycleGraph(checkpointer: nil), durability: .async, label: "none")
        print(String(format: "(b) two-node cycle, 100 iterations (200 steps), no checkpointer: %@ µs per step", none.text(1)))
        let memory = try await measure(cycleGraph(checkpointer: InMemorySaver()), durability: .async, label: "memory")
        print(String(format: "(b) same, in-memory checkpoints: %@ µs per step", memory.text(1)))

        let path = (directory as NSString).appendingPathComponent("agentgraph-bench-\(UInt32.random(in: 0...UInt32.max)).sqlite")
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        _ = try await connection.query("PRAGMA journal_mode=WAL")
        _ = try await connection.query("PRAGMA synchronous=NORMAL")
        let saver = SQLCheckpointSaver(database: connection.sql())
        try await saver.prepare()
        let sqliteGraph = try cycleGraph(checkpointer: saver)
        for durability in [Durability.async, .exit, .sync] {
            let label = switch durability { case .async: "async"; case .exit: "exit"; case .sync: "sync" }
            let perStep = try await measure(sqliteGraph, durability: durability, label: label)
            let usage = try await saver.usage(thread: "\(label)-1")
            let target = durability == .async ? String(format: " (target <= 25 µs per step) %@", perStep.median <= 25 ? "met" : "MISSED") : ""
            print(String(format: "(b) same, SQLite file checkpoints (WAL, synchronous=NORMAL), durability %@: %@ µs per step; per run %d rows, %d bytes (%.0f bytes per checkpoint)%@",
                         label, perStep.text(1), usage.rows, usage.bodyBytes + usage.snapshotBytes,
                         Double(usage.bodyBytes + usage.snapshotBytes) / Double(max(1, usage.rows)), target))
        }
        try await connection.close()
    }

    func fanout() async throws {
        struct Job: Codable, Sendable { let n: Int }
        var graph = StateGraph(Sum.self)
        graph.addNode("plan") { _, _ in StateUpdate() }
        graph.addNode("branch", payload: Job.self) { job, _, _ in .update(\.total, job.n) }
        graph.addEdge(START, "plan")
        graph.addConditionalEdges("plan", to: ["branch"]) { _ in (1...100).map { .send("branch", Job(n: $0)) } }
        graph.addEdge("branch", END)
        let compiled = try graph.compile()
        for _ in 0..<200 { _ = try await compiled.invoke(StateUpdate()) }
        let runs = fanoutRuns
        let perRun = try await Rounds.measure(rounds) {
            let started = ContinuousClock.now
            for _ in 0..<runs {
                let result = try await compiled.invoke(StateUpdate())
                precondition(result.state.total == 5050)
            }
            return (ContinuousClock.now - started) / (runs * 1000)
        }
        print(String(format: "(c) fan-out to 100 branches with a sum reducer: %@ ms per run (target <= 0.5 ms) %@",
                     perRun.text(3), perRun.median <= 0.5 ? "met" : "MISSED"))
    }

    func chatStorage() async throws {
        var graph = StateGraph(Chat.self)
        graph.addNode("turn") { state, _ in
            let n = state.turns
            return .update(\.messages, [
                Message(id: "u\(n)", role: "user", text: "Question \(n): could you summarise what we decided about the release date and who owns the checklist?"),
                Message(id: "a\(n)", role: "assistant", text: "Answer \(n): the release moves to Thursday; Ana owns the checklist and Bo reviews the migration notes."),
            ]).and(\.turns, 1)
        }
        graph.addEdge(START, "turn")
        graph.addConditionalEdges("turn", to: ["turn", END]) { state in state.turns < 100 ? ["turn"] : [.end] }

        let path = (directory as NSString).appendingPathComponent("agentgraph-chat-\(UInt32.random(in: 0...UInt32.max)).sqlite")
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let saver = SQLCheckpointSaver(database: connection.sql())
        try await saver.prepare()
        let result = try await graph.compile(checkpointer: saver).invoke(StateUpdate(), config: RunConfig(threadID: "chat", recursionLimit: 200))
        let encoder = JSONEncoder()
        let appended = try result.state.messages.reduce(0) { $0 + (try encoder.encode($1)).count }
        let usage = try await saver.usage(thread: "chat")
        let stored = usage.bodyBytes + usage.snapshotBytes
        let wholeState = try encoder.encode(result.state).count
        let ratio = Double(stored) / Double(appended)
        print(String(format: "(d) chat state, 2 messages appended per step for 100 steps: %d bytes stored in %d checkpoints for %d bytes appended = %.2f× (target <= 2×) %@; the final state alone is %d bytes, so storing it whole per step would be ~%.0f×",
                     stored, usage.rows, appended, ratio, ratio <= 2 ? "met" : "MISSED", wholeState, Double(wholeState) * Double(usage.rows) / 2 / Double(appended)))
        try await connection.close()
    }

    /// Peak resident set size of this process, from /proc (Linux).
    static func peakRSS() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return .nan }
        return kib / 1024
    }
}

/// Repeated measurements of one figure, in µs (or whatever unit the closure's duration is scaled to).
struct Rounds {
    let values: [Double]
    var median: Double { values.sorted()[values.count / 2] }

    static func measure(_ rounds: Int, _ body: () async throws -> Duration) async throws -> Rounds {
        var values: [Double] = []
        for _ in 0..<max(1, rounds) { values.append(try await body().micros) }
        return Rounds(values: values)
    }

    func text(_ decimals: Int) -> String {
        let format = "%.\(decimals)f"
        return String(format: format, median) + " (" + String(format: format, values.min() ?? 0) + "–" + String(format: format, values.max() ?? 0) + ")"
    }
}

/// Numbers threads.
final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
}

extension Duration {
    var micros: Double {
        let parts = components
        return Double(parts.seconds) * 1e6 + Double(parts.attoseconds) / 1e12
    }
}
