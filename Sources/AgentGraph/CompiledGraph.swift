import Foundation

/// What a run starts from.
public enum RunInput<S: GraphState>: Sendable {
    /// New input, merged into the thread's state by the reducers; the run starts at START.
    case update(StateUpdate<S>)
    /// Resumes every pending interrupt with this value.
    case resume(JSONValue)
    /// Resumes interrupts by `Interrupt.id`.
    case resumeByID([String: JSONValue])
    /// Continues from the checkpoint (after a crash, a failure, a breakpoint, or from an
    /// earlier checkpoint given in `RunConfig.checkpointID` to replay or run a fork).
    case `continue`

    public static func resume(_ value: some Encodable & Sendable) throws -> RunInput {
        .resume(try JSONValue(encoding: value))
    }
}

/// How a run ended.
public struct RunResult<S: GraphState>: Sendable {
    public enum Status: Sendable, Equatable { case completed, interrupted }
    public let status: Status
    public let state: S
    /// For an interrupted run: what it stopped at.
    public let interrupts: [Interrupt]
    /// The last checkpoint the run wrote (nil without a checkpointer).
    public let checkpointID: Int64?
    public let threadID: String?
    /// Steps this run executed.
    public let steps: Int
}

/// A thread's state at one checkpoint.
public struct StateSnapshot<S: GraphState>: Sendable {
    public let state: S
    public let checkpointID: Int64
    public let parentID: Int64?
    public let step: Int
    /// input, loop, update, interrupt or error.
    public let source: String
    public let createdAt: Date
    /// Nodes that run next from here (empty: the run ended).
    public let next: [String]
    public let interrupts: [Interrupt]
    /// Nodes whose writes this checkpoint holds, in merge order.
    public let writers: [String]
    /// For a checkpoint saved by a failed step: why it failed.
    public let error: String?
    public let namespace: String

    init(_ loaded: LoadedCheckpoint<S>) {
        state = loaded.state
        checkpointID = loaded.record.id
        parentID = loaded.record.parentID
        step = loaded.record.step
        source = loaded.record.source
        createdAt = loaded.record.createdAt
        next = loaded.body.next.map(\.node)
        interrupts = loaded.body.interrupts ?? []
        var writers: [String] = []
        for write in loaded.body.writes where writers.last != write.write.node { writers.append(write.write.node) }
        self.writers = writers
        error = loaded.body.error
        namespace = loaded.record.namespace
    }
}

/// A validated graph, ready to run. Safe to share and to run on many threads at once.
public final class CompiledGraph<S: GraphState>: Sendable {
    let definition: GraphDefinition<S>
    public let checkpointer: (any CheckpointSaver)?
    public let store: (any GraphStore)?
    let cache: any NodeCache
    public let name: String

    init(definition: GraphDefinition<S>, checkpointer: (any CheckpointSaver)?, store: (any GraphStore)?, cache: any NodeCache, name: String) {
        self.definition = definition
        self.checkpointer = checkpointer
        self.store = store
        self.cache = cache
        self.name = name
    }

    // MARK: Running

    /// Runs to completion or to an interrupt.
    public func invoke(_ input: RunInput<S>, config: RunConfig = RunConfig()) async throws -> RunResult<S> {
        try await execute(input, config: config, emit: nil, modes: [], sink: .none)
    }

    public func invoke(_ update: StateUpdate<S>, config: RunConfig = RunConfig()) async throws -> RunResult<S> {
        try await invoke(.update(update), config: config)
    }

    /// Runs while streaming events of the chosen modes; the last event is `.finished`.
    /// Cancelling the consuming task (or dropping the stream) cancels the run: running
    /// nodes see cancellation, and the step's finished work is checkpointed.
    public func stream(
        _ input: RunInput<S>, config: RunConfig = RunConfig(), modes: StreamMode = [.values]
    ) -> AsyncThrowingStream<GraphEvent<S>, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: GraphEvent<S>.self)
        let emit: @Sendable (GraphEvent<S>) -> Void = { continuation.yield($0) }
        let sink = ChunkSink(modes: modes) { chunk in
            switch chunk {
            case .token(let text, let node, let namespace): continuation.yield(.token(text, node: node, namespace: namespace))
            case .custom(let value, let node, let namespace): continuation.yield(.custom(value, node: node, namespace: namespace))
            case .debug(let event): continuation.yield(.debug(event))
            }
        }
        let task = Task {
            do {
                let result = try await self.execute(input, config: config, emit: emit, modes: modes, sink: sink)
                continuation.yield(.finished(result))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    func execute(
        _ input: RunInput<S>, config: RunConfig, emit: (@Sendable (GraphEvent<S>) -> Void)?, modes: StreamMode, sink: ChunkSink
    ) async throws -> RunResult<S> {
        guard let saver = checkpointer else {
            if case .update = input {
                let scope = RunScope(config: config, runID: "", writer: nil, store: store, sink: sink)
                return try await runner(scope: scope, namespace: "", emit: emit, modes: modes).run(input, checkpointID: config.checkpointID)
            }
            throw GraphError(.noCheckpointer, thread: config.threadID)
        }
        guard let thread = config.threadID else { throw GraphError(.threadRequired) }
        let environment = config.environment
        let runID = UUID().uuidString
        // A new thread is claimed with the run's first checkpoint (the writer's first write).
        let fresh = config.threadIsNew && config.checkpointID == nil
        let version: Int64
        do {
            version = fresh ? 0 : try await saver.claim(
                thread: thread, runID: runID, now: environment.now(),
                leaseUntil: environment.now().addingTimeInterval(config.leaseDuration.seconds)
            )
        } catch CheckpointConflict.busy {
            throw GraphError(.threadBusy, thread: thread)
        }
        let writer = CheckpointWriter(
            saver: saver, thread: thread, runID: runID, version: version, leaseDuration: config.leaseDuration, now: environment.now,
            claimed: !fresh, claimsInBackground: config.durability == .async
        )
        let scope = RunScope(config: config, runID: runID, writer: writer, store: store, sink: sink)
        let heartbeat = Task {
            let interval = config.leaseDuration / 3
            while !Task.isCancelled {
                do { try await environment.timer(interval) } catch { return }
                await writer.renew()
            }
        }
        defer { heartbeat.cancel() }
        do {
            let runner = runner(scope: scope, namespace: "", emit: emit, modes: modes)
            // Version 0: the thread has no checkpoint yet, so there is nothing to read.
            if version == 0, config.checkpointID == nil { runner.startFresh = true }
            let result = try await runner.run(input, checkpointID: config.checkpointID)
            // The last checkpoint is stored with the release, in one write.
            try await writer.finish()
            return result
        } catch {
            let finishError: (any Error)? = await { () async -> (any Error)? in
                do { try await writer.finish(); return nil } catch { return error }
            }()
            if let conflict = (finishError ?? error) as? CheckpointConflict {
                switch conflict {
                case .versionMismatch: throw GraphError(.concurrentUpdate, thread: thread)
                // Only a new thread's first write meets this: another run has the thread.
                case .busy: throw GraphError(.threadBusy, thread: thread)
                }
            }
            throw error
        }
    }

    func runner(scope: RunScope, namespace: String, emit: (@Sendable (GraphEvent<S>) -> Void)?, modes: StreamMode) -> Runner<S> {
        Runner(definition: definition, cache: cache, saver: checkpointer == nil ? nil : scope.writer?.saver, scope: scope,
               namespace: namespace, emit: emit, modes: modes)
    }

    /// Runs this graph as a node of a parent run: on the parent's thread, under a namespace
    /// of its own. It resumes its own interrupted checkpoint when the parent task is being
    /// resumed, and otherwise starts afresh.
    func runAsSubgraph(input: StateUpdate<S>, parent: NodeContext) async throws -> S {
        let namespace = parent.namespace.isEmpty ? parent.taskID : "\(parent.namespace)|\(parent.taskID)"
        let resumes = parent.memory.resumes
        var runInput: RunInput<S> = .update(input)
        var resumeAt: Int64?
        var childScope = parent.scope
        if let writer = parent.scope.writer, parent.config.threadID != nil {
            try await writer.flush()
            // Resuming the parent task resumes the subgraph at the interrupt it stopped at,
            // each of its interrupts getting the value given for the matching parent interrupt.
            let stored = parent.memory.results
            if !resumes.isEmpty, case .integer(let checkpoint)? = stored[Self.subgraphCheckpointKey],
               case .array(let ids)? = stored[Self.subgraphInterruptsKey] {
                let childIDs = ids.compactMap(\.stringValue)
                runInput = .resumeByID(Dictionary(zip(childIDs, resumes.suffix(childIDs.count)), uniquingKeysWith: { _, last in last }))
                resumeAt = checkpoint
            }
        } else {
            childScope = RunScope(config: parent.config, runID: parent.scope.runID, writer: nil, store: parent.store, sink: parent.scope.sink)
        }
        var config = childScope.config
        config.checkpointID = nil
        let scope = RunScope(config: config, runID: childScope.runID, writer: childScope.writer, store: childScope.store, sink: childScope.sink)
        let child = Runner(
            definition: definition, cache: cache, saver: scope.writer == nil ? nil : scope.writer?.saver,
            scope: scope, namespace: namespace, emit: nil, modes: []
        )
        if case .update = runInput { child.startFresh = true }
        let result = try await child.run(runInput, checkpointID: resumeAt)
        if result.status == .interrupted {
            if let checkpoint = result.checkpointID {
                parent.memory.contents.withLock { contents in
                    contents.results[Self.subgraphCheckpointKey] = .integer(checkpoint)
                    contents.results[Self.subgraphInterruptsKey] = .array(result.interrupts.map { .string($0.id) })
                }
            }
            throw NodeInterrupt(payloads: result.interrupts.map { $0.payload ?? .null })
        }
        return result.state
    }

    /// Where a parent task keeps its interrupted subgraph's checkpoint and interrupt ids
    /// (among its task results, so they are checkpointed with it).
    static var subgraphCheckpointKey: String { "\u{0}subgraph-checkpoint" }
    static var subgraphInterruptsKey: String { "\u{0}subgraph-interrupts" }

    // MARK: Time travel

    private func requireSaver(_ thread: String) throws -> any CheckpointSaver {
        guard let checkpointer else { throw GraphError(.noCheckpointer, thread: thread) }
        return checkpointer
    }

    /// The state at a checkpoint (the latest if `checkpointID` is nil); nil for an empty thread.
    public func state(thread: String, checkpointID: Int64? = nil, namespace: String = "") async throws -> StateSnapshot<S>? {
        let records = try await requireSaver(thread).records(thread: thread, namespace: namespace)
        return try CheckpointReader<S>.load(records, id: checkpointID).map(StateSnapshot.init)
    }

    /// A thread's checkpoints, newest first, each with its state.
    public func history(thread: String, namespace: String = "", limit: Int? = nil) async throws -> [StateSnapshot<S>] {
        let records = try await requireSaver(thread).records(thread: thread, namespace: namespace)
        let all = try CheckpointReader<S>.all(records).reversed().map(StateSnapshot.init)
        return limit.map { Array(all.prefix($0)) } ?? all
    }

    /// Writes `update` onto the state at a checkpoint (the latest if nil), as if `asNode` had
    /// written it: a new checkpoint whose parent is that one, so the thread forks there and
    /// the original checkpoints stay as they were. The next tasks are those that would follow
    /// `asNode` (a waiting edge counts `asNode` as finished), or the checkpoint's own when
    /// `asNode` is nil. Continue the fork with `invoke(.continue, …)`. Returns the new
    /// checkpoint's id.
    @discardableResult
    public func updateState(
        thread: String, checkpointID: Int64? = nil, update: StateUpdate<S>, asNode: String? = nil,
        environment: RunEnvironment = .live
    ) async throws -> Int64 {
        let saver = try requireSaver(thread)
        if let asNode, asNode != START, definition.node(asNode) == nil {
            throw GraphError(.invalidRoute("no node named '\(asNode)'"), thread: thread)
        }
        return try await holdingThread(thread, saver: saver, environment: environment) { runID, version in
            var config = RunConfig(threadID: thread, durability: .sync)
            config.environment = environment
            let writer = CheckpointWriter(saver: saver, thread: thread, runID: runID, version: version, leaseDuration: .seconds(60), now: environment.now)
            let scope = RunScope(config: config, runID: runID, writer: writer, store: store, sink: .none)
            return try await runner(scope: scope, namespace: "", emit: nil, modes: []).fork(
                at: checkpointID, update: update, asNode: asNode
            )
        }
    }

    /// Keeps the last `keepLast` checkpoints of a thread's namespace and any created at or after
    /// `keepingAfter`; deletes the rest. The oldest kept checkpoint of each chain gets a
    /// snapshot of its full state, so every kept checkpoint still reads back the same.
    /// Returns how many checkpoints were deleted.
    @discardableResult
    public func pruneHistory(
        thread: String, namespace: String = "", keepLast: Int, keepingAfter: Date? = nil, environment: RunEnvironment = .live
    ) async throws -> Int {
        let saver = try requireSaver(thread)
        // Pruning holds the thread like a run does, so no run appends to a chain being cut.
        return try await holdingThread(thread, saver: saver, environment: environment) { _, _ in
            try await prune(saver, thread: thread, namespace: namespace, keepLast: keepLast, keepingAfter: keepingAfter)
        }
    }

    /// Runs `body` holding the thread's lease (refused with `.threadBusy` while a run holds
    /// it), and releases the lease whether `body` succeeds or throws.
    private func holdingThread<T>(
        _ thread: String, saver: any CheckpointSaver, environment: RunEnvironment,
        _ body: (_ runID: String, _ version: Int64) async throws -> T
    ) async throws -> T {
        let runID = UUID().uuidString
        let version: Int64
        do {
            version = try await saver.claim(thread: thread, runID: runID, now: environment.now(), leaseUntil: environment.now().addingTimeInterval(60))
        } catch CheckpointConflict.busy {
            throw GraphError(.threadBusy, thread: thread)
        }
        do {
            let result = try await body(runID, version)
            try await saver.release(thread: thread, runID: runID)
            return result
        } catch {
            try? await saver.release(thread: thread, runID: runID)
            throw error
        }
    }

    private func prune(_ saver: any CheckpointSaver, thread: String, namespace: String, keepLast: Int, keepingAfter: Date?) async throws -> Int {
        let records = try await saver.records(thread: thread, namespace: namespace)
        // The latest checkpoint is always kept: it is where the thread continues.
        var keep = Set(records.suffix(max(1, keepLast)).map(\.id))
        if let keepingAfter {
            for record in records where record.createdAt >= keepingAfter { keep.insert(record.id) }
        }
        let doomed = records.filter { !keep.contains($0.id) }.map(\.id)
        guard !doomed.isEmpty else { return 0 }
        let doomedSet = Set(doomed)
        var snapshots: [Int64: Data] = [:]
        let loaded = try CheckpointReader<S>.all(records)
        for checkpoint in loaded where keep.contains(checkpoint.record.id) && checkpoint.record.snapshot == nil {
            if let parent = checkpoint.record.parentID, doomedSet.contains(parent) {
                snapshots[checkpoint.record.id] = try JSONCoding.encoder.encode(checkpoint.state)
            }
        }
        try await saver.prune(thread: thread, namespace: namespace, deleting: doomed, snapshots: snapshots)
        return doomed.count
    }
}

extension Runner {
    /// Writes an update as `asNode` onto a checkpoint and saves it as a new child of it.
    func fork(at checkpointID: Int64?, update: StateUpdate<S>, asNode: String?) async throws -> Int64 {
        guard let saver, let thread else { throw error(.noCheckpointer) }
        guard let base = try CheckpointReader<S>.load(try await saver.records(thread: thread, namespace: namespace), id: checkpointID) else {
            throw error(.invalidResume("the thread has no checkpoint to update"))
        }
        state = base.state
        step = base.record.step
        headID = base.record.id
        if !definition.waiting.isEmpty { barriers = Barriers(base.body.barriers, definition: definition) }
        let writes = try forkWrites(update, asNode: asNode ?? "__update__")
        step += 1
        if let asNode, let index = definition.index[asNode] {
            var targets = Targets()
            try await collectRoutes(from: index, name: asNode, goto: update.goto, into: &targets)
            // Writing as a node counts as that node finishing, for the waiting edges too.
            if !definition.waiting.isEmpty { barriers.finished(index, definition: definition, into: &targets) }
            next = targets.tasks(names: definition.names, step: step + 1)
        } else {
            next = try tasks(from: base.body.next)
        }
        // Editing the state of an unfinished step (an interrupt, say) keeps what the step
        // already did: finished tasks' writes, task results, resume values and the interrupts.
        let carried = asNode == nil ? base.body : nil
        try await checkpoint(source: "update", writes: writes) { body in
            guard let carried else { return }
            body.pending = carried.pending
            body.interrupts = carried.interrupts
            body.resumes = carried.resumes
            body.taskResults = carried.taskResults
        }
        try await scope.writer?.flush()
        return headID ?? 0
    }
}
