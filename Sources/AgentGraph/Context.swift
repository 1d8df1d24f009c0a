import Foundation
import Synchronization

/// Settings of one run.
public struct RunConfig: Sendable {
    /// The thread whose checkpoints the run reads and writes. Needed with a checkpointer.
    public var threadID: String?
    /// Resume or replay from this checkpoint instead of the thread's latest.
    public var checkpointID: Int64?
    /// Steps one run may take before it fails with `.recursionLimit`.
    public var recursionLimit: Int = 25
    public var durability: Durability = .async
    /// Values for nodes to read (model names, user ids…), like LangGraph's `configurable`.
    public var configurable: [String: JSONValue] = [:]
    /// How long a run holds its thread without storing a checkpoint before another run may
    /// take it over (after a crash, say). A running node renews it.
    public var leaseDuration: Duration = .seconds(60)
    /// The caller knows the thread has never been written (its id was made for this run): the
    /// run takes the thread's lease with its first checkpoint, in one write, instead of in a
    /// write of its own before it. Under `.sync` and `.exit` that first checkpoint is stored
    /// before any node runs, and a thread that exists after all fails the run with
    /// `.threadBusy` before any node ran. Under `.async` it is stored in the background: nodes
    /// run meanwhile, but no side effect (`NodeContext.task`) runs before it is stored, and a
    /// thread that exists after all fails the run with `.threadBusy` at its next checkpoint
    /// (or before its first side effect), having stored nothing.
    public var threadIsNew = false
    public var environment: RunEnvironment = .live

    public init(
        threadID: String? = nil, checkpointID: Int64? = nil, recursionLimit: Int = 25,
        durability: Durability = .async, configurable: [String: JSONValue] = [:]
    ) {
        self.threadID = threadID
        self.checkpointID = checkpointID
        self.recursionLimit = recursionLimit
        self.durability = durability
        self.configurable = configurable
    }
}

/// The clock, the backoff sleep and the jitter source, injectable for tests, and the timer
/// a run waits on for its lease's heartbeat and its nodes' timeouts (`Task.sleep` unless the
/// host has a cheaper one, such as its event loops' timers).
public struct RunEnvironment: Sendable {
    public var now: @Sendable () -> Date
    public var sleep: @Sendable (Duration) async throws -> Void
    public var random: @Sendable () -> Double
    public var timer: @Sendable (Duration) async throws -> Void

    public init(
        now: @escaping @Sendable () -> Date,
        sleep: @escaping @Sendable (Duration) async throws -> Void,
        random: @escaping @Sendable () -> Double,
        timer: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.now = now
        self.sleep = sleep
        self.random = random
        self.timer = timer
    }

    public static let live = RunEnvironment(
        now: { Date() },
        sleep: { try await Task.sleep(for: $0) },
        random: { Double.random(in: 0..<1) }
    )
}

/// What a run shares with its nodes and subgraphs.
final class RunScope: Sendable {
    let config: RunConfig
    let runID: String
    let writer: CheckpointWriter?
    let store: (any GraphStore)?
    let sink: ChunkSink

    init(config: RunConfig, runID: String, writer: CheckpointWriter?, store: (any GraphStore)?, sink: ChunkSink) {
        self.config = config
        self.runID = runID
        self.writer = writer
        self.store = store
        self.sink = sink
    }
}

/// Results of `context.task` and the resume values of one task, kept across its retries
/// and, through checkpoints, across resumes.
final class TaskMemory: Sendable {
    struct Contents {
        var results: [String: JSONValue]
        var resumes: [JSONValue]
        var taskCalls: [String: Int] = [:]
        var interruptCalls = 0
    }

    let contents: Mutex<Contents>

    init(results: [String: JSONValue], resumes: [JSONValue]) {
        contents = Mutex(Contents(results: results, resumes: resumes))
    }

    /// Called at the start of each attempt: counters restart, results stay.
    func restart() {
        contents.withLock {
            $0.taskCalls = [:]
            $0.interruptCalls = 0
        }
    }

    var results: [String: JSONValue] { contents.withLock { $0.results } }
    var resumes: [JSONValue] { contents.withLock { $0.resumes } }
}

/// A failure that made a node's fallback run.
public struct NodeFailure: Sendable {
    public let node: String
    public let error: any Error
}

/// What a node sees besides the state: the run's settings, where it is, the store, a way to
/// stream output, to interrupt, and to wrap side effects so a resume does not repeat them.
public struct NodeContext: Sendable {
    public let node: String
    let taskIDParts: (node: String, send: Int?, restored: String?)
    /// "node@step", or "node@step#n" for the n-th send of a step.
    public var taskID: String {
        if let restored = taskIDParts.restored { return restored }
        guard let send = taskIDParts.send else { return "\(taskIDParts.node)@\(step)" }
        return "\(taskIDParts.node)@\(step)#\(send)"
    }
    public let step: Int
    /// The checkpoint namespace: "" in the top graph.
    public let namespace: String
    /// 1 for the first attempt, then counting retries.
    public let attempt: Int
    /// Set when this node runs as another node's fallback.
    public let failure: NodeFailure?
    let scope: RunScope
    let memory: TaskMemory

    public var config: RunConfig { scope.config }
    public var store: (any GraphStore)? { scope.store }

    /// Streams text (an LLM delta, say) to consumers in `.tokens` mode.
    public func write(token: String) {
        guard scope.sink.wants(.tokens) else { return }
        scope.sink.send?(.token(token, node: node, namespace: namespace))
    }

    /// Streams any value to consumers in `.custom` mode.
    public func emit(_ value: some Encodable & Sendable) {
        guard scope.sink.wants(.custom), let json = try? JSONValue(encoding: value) else { return }
        scope.sink.send?(.custom(json, node: node, namespace: namespace))
    }

    /// Stops the run, saving a checkpoint, and hands `payload` to the caller. When the run is
    /// resumed with a value, the node runs again from its start and this call returns that
    /// value instead. The n-th call in a node gets the n-th resume value.
    public func interrupt<R: Decodable>(_ payload: some Encodable & Sendable, resumeAs: R.Type = JSONValue.self) throws -> R {
        let resume: JSONValue? = memory.contents.withLock { contents in
            defer { contents.interruptCalls += 1 }
            return contents.interruptCalls < contents.resumes.count ? contents.resumes[contents.interruptCalls] : nil
        }
        if let resume { return try resume.decode(as: R.self) }
        throw NodeInterrupt(payloads: [try JSONValue(encoding: payload)])
    }

    /// Runs `body` once for this task: its result is checkpointed, and when the node runs
    /// again (a retry, or a resume after an interrupt) the stored result is returned without
    /// running `body`. Name each side effect; repeated names count as separate calls.
    ///
    /// Under `.async` durability `body` runs only once every checkpoint queued before it is
    /// stored (and the thread's lease taken): a crash can then lose the side effect's result,
    /// but never the state that led to it, so a resume makes the same call again (the same
    /// arguments, the same ids for idempotency keys) rather than a different one.
    public func task<R: Codable & Sendable>(_ name: String, _ body: () async throws -> R) async throws -> R {
        let key: String = memory.contents.withLock { contents in
            let count = contents.taskCalls[name, default: 0]
            contents.taskCalls[name] = count + 1
            return count == 0 ? name : "\(name)#\(count)"
        }
        if let stored = memory.contents.withLock({ $0.results[key] }) {
            return try stored.decode(as: R.self)
        }
        if scope.config.durability == .async, let writer = scope.writer { try await writer.flush() }
        let result = try await body()
        let json = try JSONValue(encoding: result)
        memory.contents.withLock { $0.results[key] = json }
        return result
    }

    /// A configurable value, decoded.
    public func configurable<T: Decodable>(_ key: String, as type: T.Type = T.self) throws -> T? {
        try config.configurable[key].map { try $0.decode(as: T.self) }
    }
}
