import Foundation
import Synchronization

/// A task of a step: a node to run, with its `Send` payload if it has one. Its id
/// ("node@step", "node@step#n" for the n-th send) is built only when needed.
struct PlannedTask: Sendable {
    let node: String
    /// The node's number in the graph definition.
    let index: Int
    let step: Int
    let send: Int?
    let payload: Payload?
    private let restoredID: String?

    init(node: String, index: Int, step: Int, send: Int?, payload: Payload?) {
        self.node = node
        self.index = index
        self.step = step
        self.send = send
        self.payload = payload
        self.restoredID = nil
    }

    init(_ record: TaskRecord, index: Int) {
        node = record.node
        self.index = index
        step = 0
        send = record.payload == nil ? nil : 0
        payload = record.payload.map(Payload.init(json:))
        restoredID = record.id
    }

    var idParts: (node: String, send: Int?, restored: String?) { (node, send, restoredID) }

    var id: String {
        if let restoredID { return restoredID }
        guard let send else { return "\(node)@\(step)" }
        return "\(node)@\(step)#\(send)"
    }

    var record: TaskRecord {
        get throws { TaskRecord(node: node, id: id, payload: try payload?.encoded()) }
    }

    /// How errors name this task: the node, and which send it was.
    var label: String {
        let id = self.id
        guard payload != nil, let hash = id.lastIndex(of: "#") else { return node }
        return "\(node) (send \(id[id.index(after: hash)...]))"
    }
}

/// The outcomes of a step's concurrent tasks, each written once by its own child task.
final class OutcomeSlots: Sendable {
    private let slots: Mutex<[TaskOutcome?]>
    init(_ initial: [TaskOutcome?]) { slots = Mutex(initial) }
    func set(_ index: Int, _ outcome: TaskOutcome) { slots.withLock { $0[index] = outcome } }
    var all: [TaskOutcome?] { slots.withLock { $0 } }
}

/// Thrown by a child task whose node failed, so the group cancels its siblings.
struct SiblingFailed: Error {}

/// What a finished task wrote: `node` is the node whose update this is (the task's, or its
/// fallback's).
struct FinishedTask: Sendable {
    let node: String
    let writes: [FieldWrite]
    let goto: [Route]
}

enum TaskOutcome: Sendable {
    case done(FinishedTask)
    case interrupted([JSONValue])
    case failed(node: String, error: any Error)
}

/// Runs one task with its node's policies: cache, timeout, retries, fallback.
struct TaskRunner<S: GraphState>: Sendable {
    let definition: GraphDefinition<S>
    let cache: any NodeCache
    let scope: RunScope
    let namespace: String
    let step: Int
    let state: S

    func run(_ task: PlannedTask, memory: TaskMemory) async -> TaskOutcome {
        // Fields are read from the definition where needed rather than copied out whole:
        // many tasks run at once, and every copied reference is an atomic count shared
        // between cores.
        var cacheKey: String?
        if let ttl = definition.policies[task.index].cache.map({ $0.ttl }) {
            cacheKey = try? cacheKeyFor(task)
            if let key = cacheKey, let data = await cache.get(key, now: scope.config.environment.now()),
               let update = try? decodeCached(data) {
                debug(.taskFinished(node: task.node, taskID: task.id, step: step, namespace: namespace, duration: .zero, outcome: "cached"))
                return .done(FinishedTask(node: task.node, writes: update.writes, goto: update.goto))
            }
            _ = ttl
        }
        var attempt = 1
        while true {
            memory.restart()
            let context = NodeContext(
                node: task.node, taskIDParts: task.idParts, step: step, namespace: namespace, attempt: attempt,
                failure: nil, scope: scope, memory: memory
            )
            do {
                let update = try await invoke(task.index, task: task, context: context)
                if let key = cacheKey, let data = try? encodeCached(update, node: task.node) {
                    let now = scope.config.environment.now()
                    await cache.set(key, data, expiresAt: definition.policies[task.index].cache?.ttl.map { now.addingTimeInterval($0.seconds) })
                }
                return .done(FinishedTask(node: task.node, writes: update.writes, goto: update.goto))
            } catch let interrupt as NodeInterrupt {
                return .interrupted(interrupt.payloads)
            } catch {
                // The run's checkpoints can no longer be stored (the thread was taken, or a
                // write failed): running the node again, or its fallback, cannot help.
                if scope.writer?.hasFailed == true { return .failed(node: task.node, error: error) }
                let policy = definition.policies[task.index]
                let environment = scope.config.environment
                if let retry = policy.retry, attempt < retry.maxAttempts, retry.retryOn(error), !Task.isCancelled {
                    do {
                        try await environment.sleep(retry.delay(after: attempt, random: environment.random()))
                    } catch {
                        return .failed(node: task.node, error: error)
                    }
                    attempt += 1
                    continue
                }
                if let fallback = policy.fallback, fallback != task.node, let fallbackIndex = definition.node(fallback),
                   !(error is CancellationError), !Task.isCancelled {
                    memory.restart()
                    let context = NodeContext(
                        node: fallback, taskIDParts: task.idParts, step: step, namespace: namespace, attempt: 1,
                        failure: NodeFailure(node: task.node, error: error), scope: scope, memory: memory
                    )
                    do {
                        let update = try await invoke(fallbackIndex, task: task, context: context)
                        return .done(FinishedTask(node: fallback, writes: update.writes, goto: update.goto))
                    } catch let interrupt as NodeInterrupt {
                        return .interrupted(interrupt.payloads)
                    } catch {
                        return .failed(node: fallback, error: error)
                    }
                }
                return .failed(node: task.node, error: error)
            }
        }
    }

    private func invoke(_ index: Int, task: PlannedTask, context: NodeContext) async throws -> StateUpdate<S> {
        let timeout = definition.policies[index].timeout
        let sink = scope.sink
        let started = sink.wants(.debug) ? ContinuousClock.now : nil
        if started != nil {
            debug(.taskStarted(node: context.node, taskID: task.id, step: step, namespace: namespace, attempt: context.attempt))
        }
        do {
            let update: StateUpdate<S>
            if let timeout {
                let action = definition.specs[index].action
                update = try await Self.withTimeout(timeout, timer: scope.config.environment.timer) { [state] in try await action(state, task.payload, context) }
            } else {
                update = try await definition.specs[index].action(state, task.payload, context)
            }
            if let started {
                debug(.taskFinished(node: context.node, taskID: task.id, step: step, namespace: namespace, duration: ContinuousClock.now - started, outcome: "ok"))
            }
            return update
        } catch {
            if let started {
                let outcome = error is NodeInterrupt ? "interrupted" : "failed: \(error)"
                debug(.taskFinished(node: context.node, taskID: task.id, step: step, namespace: namespace, duration: ContinuousClock.now - started, outcome: outcome))
            }
            throw error
        }
    }

    private struct TimedOut: Error {}

    /// Runs `body`, cancelling it once `limit` has passed.
    static func withTimeout<T: Sendable>(_ limit: Duration, timer: @escaping @Sendable (Duration) async throws -> Void,
                                         _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await timer(limit)
                throw TimedOut()
            }
            defer { group.cancelAll() }
            do {
                guard let first = try await group.next() else { throw CancellationError() }
                return first
            } catch is TimedOut {
                throw GraphError(.timeout(limit))
            }
        }
    }

    private func debug(_ event: DebugEvent) {
        guard scope.sink.wants(.debug) else { return }
        scope.sink.send?(.debug(event))
    }

    private func cacheKeyFor(_ task: PlannedTask) throws -> String {
        let stateJSON = try JSONValue(encoding: state).jsonText
        let payloadJSON = try task.payload?.encoded().jsonText ?? ""
        return "\(namespace)|\(task.node)|\(stateJSON)|\(payloadJSON)"
    }

    private func encodeCached(_ update: StateUpdate<S>, node: String) throws -> Data {
        try JSONCoding.encoder.encode(PendingRecord<S>(
            task: "", node: node,
            writes: update.writes.map { EncodedWrite(NodeWrite(node: node, write: $0)) },
            goto: update.goto.map { try TaskRecord(node: $0.node, id: "", payload: $0.payload?.encoded()) }
        ))
    }

    private func decodeCached(_ data: Data) throws -> StateUpdate<S> {
        try JSONCoding.decoder.decode(PendingRecord<S>.self, from: data).update
    }
}

extension PendingRecord {
    var update: StateUpdate<S> {
        var update = StateUpdate<S>()
        update.writes = writes.map(\.write.write)
        update.goto = goto.map { Route(node: $0.node, payload: $0.payload.map(Payload.init(json:))) }
        return update
    }
}

/// A checkpoint read back: its record, its body and the state at it.
struct LoadedCheckpoint<S: GraphState>: Sendable {
    let record: CheckpointRecord
    let body: CheckpointBody<S>
    let state: S
}

enum CheckpointReader<S: GraphState> {
    static func body(_ record: CheckpointRecord) throws -> CheckpointBody<S> {
        do {
            return try JSONCoding.decoder.decode(CheckpointBody<S>.self, from: record.body)
        } catch let error as GraphError {
            throw error
        } catch {
            throw GraphError(.corruptCheckpoint("checkpoint \(record.id): \(error)"), thread: record.threadID)
        }
    }

    static func snapshot(_ data: Data, _ record: CheckpointRecord) throws -> S {
        do {
            return try JSONCoding.decoder.decode(S.self, from: data)
        } catch {
            throw GraphError(.corruptCheckpoint("snapshot of checkpoint \(record.id): \(error)"), thread: record.threadID)
        }
    }

    /// The checkpoint `id` (or the latest), with its state rebuilt from the nearest snapshot.
    static func load(_ records: [CheckpointRecord], id: Int64?) throws -> LoadedCheckpoint<S>? {
        guard let last = records.last else {
            if let id { throw GraphError(.checkpointNotFound(id)) }
            return nil
        }
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { _, new in new })
        let targetID = id ?? last.id
        guard let target = byID[targetID] else { throw GraphError(.checkpointNotFound(targetID), thread: last.threadID) }
        var chain = [target]
        while chain[chain.count - 1].snapshot == nil, let parentID = chain[chain.count - 1].parentID {
            guard let parent = byID[parentID] else {
                throw GraphError(.corruptCheckpoint("checkpoint \(parentID), parent of \(chain[chain.count - 1].id), is missing"), thread: target.threadID)
            }
            chain.append(parent)
        }
        var state = S()
        var targetBody: CheckpointBody<S>?
        for record in chain.reversed() {
            let body = try body(record)
            if let snapshot = record.snapshot {
                state = try self.snapshot(snapshot, record)
            } else {
                state = try apply(body.writes, to: state, record: record)
            }
            if record.id == targetID { targetBody = body }
        }
        return LoadedCheckpoint(record: target, body: targetBody ?? CheckpointBody(), state: state)
    }

    /// Every checkpoint of a namespace with its state, oldest first.
    static func all(_ records: [CheckpointRecord]) throws -> [LoadedCheckpoint<S>] {
        var states: [Int64: S] = [:]
        var loaded: [LoadedCheckpoint<S>] = []
        loaded.reserveCapacity(records.count)
        for record in records {
            let body = try body(record)
            let state: S
            if let snapshot = record.snapshot {
                state = try self.snapshot(snapshot, record)
            } else if let parentID = record.parentID {
                guard let parent = states[parentID] else {
                    throw GraphError(.corruptCheckpoint("checkpoint \(parentID), parent of \(record.id), is missing"), thread: record.threadID)
                }
                state = try apply(body.writes, to: parent, record: record)
            } else {
                state = try apply(body.writes, to: S(), record: record)
            }
            states[record.id] = state
            loaded.append(LoadedCheckpoint(record: record, body: body, state: state))
        }
        return loaded
    }

    static func apply(_ writes: [EncodedWrite<S>], to state: S, record: CheckpointRecord) throws -> S {
        var state = state
        let fields = S.schema.fields
        for write in writes {
            do {
                try fields[write.write.write.field].reduce(&state, write.write.write.value)
            } catch {
                throw GraphError(.corruptCheckpoint("checkpoint \(record.id): \(error)"), node: write.write.node, thread: record.threadID)
            }
        }
        return state
    }
}

/// A write with the node that made it, in merge order.
struct NodeWrite: Sendable {
    let node: String
    let write: FieldWrite
}

/// The next step's tasks as routes are followed: nodes at most once each, in node order,
/// then sends in the order they were made.
struct Targets {
    var nodes: [Int] = []
    var sends: [(Int, String, Payload)] = []

    mutating func add(_ index: Int) {
        if index >= 0, !nodes.contains(index) { nodes.append(index) }
    }

    func tasks(names: [String], step: Int) -> [PlannedTask] {
        var tasks: [PlannedTask] = []
        tasks.reserveCapacity(nodes.count + sends.count)
        for index in nodes.count > 1 ? nodes.sorted() : nodes {
            tasks.append(PlannedTask(node: names[index], index: index, step: step, send: nil, payload: nil))
        }
        for (position, send) in sends.enumerated() {
            tasks.append(PlannedTask(node: send.1, index: send.0, step: step, send: position, payload: send.2))
        }
        return tasks
    }
}

/// One run of a graph (or of a subgraph inside a parent's run): the Pregel-style loop of
/// steps, each running its ready tasks concurrently, merging their updates at the boundary,
/// checkpointing and routing.
final class Runner<S: GraphState> {
    let definition: GraphDefinition<S>
    let cache: any NodeCache
    let saver: (any CheckpointSaver)?
    let scope: RunScope
    let namespace: String
    let emit: (@Sendable (GraphEvent<S>) -> Void)?
    let modes: StreamMode
    let reducers: [StateField<S>]

    var state = S()
    var step = -2
    var headID: Int64?
    var next: [PlannedTask] = []
    /// Which sources of each waiting edge have finished since its target last ran.
    var barriers: Barriers
    /// Tasks of the current step that a checkpoint says already finished.
    var pending: [String: FinishedTask] = [:]
    var memories: [String: TaskMemory] = [:]
    var skipBreakpointBefore = false
    /// A subgraph called afresh ignores its namespace's earlier checkpoints.
    var startFresh = false
    private var stepsRun = 0

    init(
        definition: GraphDefinition<S>, cache: any NodeCache, saver: (any CheckpointSaver)?, scope: RunScope,
        namespace: String, emit: (@Sendable (GraphEvent<S>) -> Void)?, modes: StreamMode
    ) {
        self.definition = definition
        self.cache = cache
        self.saver = saver
        self.scope = scope
        self.namespace = namespace
        self.emit = emit
        self.modes = modes
        self.reducers = S.schema.fields
        self.barriers = Barriers(count: definition.waiting.count)
        self.checkpointing = saver != nil && scope.writer != nil
    }

    var thread: String? { scope.config.threadID }
    let checkpointing: Bool

    func error(_ kind: GraphError.Kind, node: String? = nil, underlying: (any Error)? = nil, step: Int? = nil) -> GraphError {
        var error = GraphError(kind, node: node, step: step ?? self.step, thread: thread, underlying: underlying)
        error.namespace = namespace
        return error
    }

    func tasks(from records: [TaskRecord]) throws -> [PlannedTask] {
        try records.map { record in
            guard let index = definition.node(record.node) else {
                throw error(.corruptCheckpoint("the checkpoint schedules '\(record.node)', which this graph does not have"))
            }
            return PlannedTask(record, index: index)
        }
    }

    // MARK: Starting

    func run(_ input: RunInput<S>, checkpointID: Int64?) async throws -> RunResult<S> {
        var base: LoadedCheckpoint<S>?
        if let saver, let thread, !startFresh {
            base = try CheckpointReader<S>.load(try await saver.records(thread: thread, namespace: namespace), id: checkpointID)
        } else if checkpointID != nil, saver == nil {
            throw error(.noCheckpointer)
        }
        if let base {
            state = base.state
            step = base.record.step
            headID = base.record.id
            if !definition.waiting.isEmpty { barriers = Barriers(base.body.barriers, definition: definition) }
        }
        switch input {
        case .update(let update):
            try await start(with: update)
        case .resume(let value):
            guard base?.body.interrupts?.isEmpty == false else {
                throw error(.invalidResume("the thread is not interrupted"))
            }
            try restore(base, resume: { _ in value })
        case .resumeByID(let values):
            guard let interrupts = base?.body.interrupts, !interrupts.isEmpty else {
                throw error(.invalidResume("the thread is not interrupted"))
            }
            let known = Set(interrupts.map(\.id))
            if let unknown = values.keys.first(where: { !known.contains($0) }) {
                throw error(.invalidResume("no interrupt '\(unknown)' is pending; pending: \(known.sorted().joined(separator: ", "))"))
            }
            try restore(base, resume: { values[$0.id] })
        case .continue:
            guard base != nil else { throw error(.invalidResume("the thread has no checkpoint to continue from")) }
            if base?.body.interrupts?.contains(where: { $0.kind == .node }) == true { throw error(.resumeRequired) }
            try restore(base, resume: { _ in nil })
        }
        return try await loop()
    }

    /// Applies an update written outside a step (input, or a state edit) to the state.
    func forkWrites(_ update: StateUpdate<S>, asNode node: String) throws -> [NodeWrite] {
        for write in update.writes where write.field < 0 { throw error(.undeclaredField, node: node) }
        state = try update.applied(to: state)
        return update.writes.map { NodeWrite(node: node, write: $0) }
    }

    private func start(with update: StateUpdate<S>) async throws {
        let writes = try forkWrites(update, asNode: "__input__")
        step += 1
        pending = [:]
        memories = [:]
        var targets = Targets()
        try await collectRoutes(from: definition.start, name: START, goto: [], into: &targets)
        next = targets.tasks(names: definition.names, step: step + 1)
        try await checkpoint(source: "input", writes: writes)
        emitValues()
    }

    /// Picks up a checkpoint's unfinished step: its tasks, the writes of those that finished,
    /// their task results and resume values (plus the new resume value, for interrupted ones).
    private func restore(_ base: LoadedCheckpoint<S>?, resume: (Interrupt) -> JSONValue?) throws {
        guard let base else { throw error(.invalidResume("the thread has no checkpoint")) }
        let body = base.body
        next = try tasks(from: body.next)
        pending = [:]
        for record in body.pending ?? [] {
            pending[record.task] = FinishedTask(
                node: record.node, writes: record.writes.map(\.write.write),
                goto: record.goto.map { Route(node: $0.node, payload: $0.payload.map(Payload.init(json:))) }
            )
        }
        var resumes = body.resumes ?? [:]
        let interrupts = body.interrupts ?? []
        var resumedAny = false
        for interrupt in interrupts {
            switch interrupt.kind {
            case .node:
                if let value = resume(interrupt) {
                    resumes[interrupt.taskID, default: []].append(value)
                    resumedAny = true
                }
            case .before:
                skipBreakpointBefore = true
                resumedAny = true
            case .after:
                resumedAny = true
            }
        }
        if !interrupts.isEmpty, !resumedAny { throw error(.resumeRequired) }
        // The step already started (some tasks finished, interrupted or failed): its
        // before-breakpoint was passed then, and must not stop it again.
        if body.pending != nil || body.error != nil || interrupts.contains(where: { $0.kind == .node }) {
            skipBreakpointBefore = true
        }
        var ids = Set(resumes.keys)
        ids.formUnion((body.taskResults ?? [:]).keys)
        memories = [:]
        for id in ids {
            memories[id] = TaskMemory(results: body.taskResults?[id] ?? [:], resumes: resumes[id] ?? [])
        }
    }

    // MARK: The loop

    private func loop() async throws -> RunResult<S> {
        while !next.isEmpty {
            try Task.checkCancellation()
            if stepsRun >= scope.config.recursionLimit {
                throw error(.recursionLimit(scope.config.recursionLimit), node: next.map(\.node).joined(separator: ", "))
            }
            if !skipBreakpointBefore, !definition.interruptBefore.isEmpty,
               let task = next.first(where: { definition.interruptBefore.contains($0.node) }) {
                let interrupt = Interrupt(
                    id: "\(task.id):before", node: task.node, taskID: task.id, namespace: namespace, kind: .before, payload: nil
                )
                return try await stop(at: [interrupt], done: [], source: "interrupt")
            }
            skipBreakpointBefore = false
            let tasks = next
            let outcomes = await runStep(tasks)
            stepsRun += 1

            var done: [(task: PlannedTask, finished: FinishedTask)] = []
            done.reserveCapacity(tasks.count)
            var interrupts: [Interrupt] = []
            var failure: (node: String, error: any Error)?
            for index in tasks.indices {
                let task = tasks[index]
                switch outcomes[index] {
                case .done(let finished):
                    done.append((task, finished))
                case .interrupted(let payloads):
                    let count = memories[task.id]?.resumes.count ?? 0
                    for (offset, payload) in payloads.enumerated() {
                        interrupts.append(Interrupt(
                            id: "\(task.id):\(count + offset)", node: task.node, taskID: task.id,
                            namespace: namespace, kind: .node, payload: payload
                        ))
                    }
                case .failed(let node, let error):
                    // A sibling's failure cancels the others; report the cause, not the cancellations.
                    if failure == nil || (failure?.error is CancellationError && !(error is CancellationError)) {
                        failure = (node, error)
                    }
                }
            }
            if let failure {
                var cause: GraphError
                if let graphError = failure.error as? GraphError {
                    cause = graphError
                    cause.node = cause.node ?? failure.node
                    cause.thread = thread
                    cause.namespace = namespace
                } else {
                    cause = error(.nodeFailed, node: failure.node, underlying: failure.error)
                }
                cause.step = step + 1
                _ = try? await stop(at: [], done: done, source: "error", failure: cause.description)
                throw cause
            }
            if !interrupts.isEmpty {
                return try await stop(at: interrupts, done: done, source: "interrupt")
            }

            let writes: [NodeWrite]
            let stepBefore = step
            let barriersBefore = barriers
            var targets = Targets()
            do {
                writes = try merge(done)
                step += 1
                for (task, finished) in done {
                    let index = finished.node == task.node ? task.index : definition.node(finished.node) ?? -1
                    guard index >= 0 else { continue }
                    if finished.goto.isEmpty, !definition.hasRouters[index] {
                        for to in definition.successors[index] { targets.add(to) }
                    } else {
                        try await collectRoutes(from: index, name: finished.node, goto: finished.goto, into: &targets)
                    }
                    if !definition.waiting.isEmpty { barriers.finished(index, definition: definition, into: &targets) }
                }
            } catch {
                // Save the step as failed, with its finished work, so a fix-and-continue does
                // not repeat side effects. The state in memory may be half-merged; the
                // checkpoint is written against the state before the step, and holds the
                // barriers from before it (the rerun step marks its sources again).
                step = stepBefore
                barriers = barriersBefore
                if var graphError = error as? GraphError {
                    graphError.step = stepBefore + 1
                    _ = try? await stop(at: [], done: done, source: "error", failure: graphError.description)
                    throw graphError
                }
                _ = try? await stop(at: [], done: done, source: "error", failure: "\(error)")
                throw error
            }
            if !pending.isEmpty { pending = [:] }
            if !memories.isEmpty { memories = [:] }
            next = targets.tasks(names: definition.names, step: step + 1)
            try await checkpoint(source: "loop", writes: writes, final: next.isEmpty)
            if let emit {
                if modes.contains(.updates) {
                    for (task, finished) in done {
                        var update = StateUpdate<S>()
                        update.writes = finished.writes
                        update.goto = finished.goto
                        emit(.update(NodeUpdate(node: finished.node, taskID: task.id, step: step, update: update)))
                    }
                }
                emitValues()
            }
            if !next.isEmpty, !definition.interruptAfter.isEmpty {
                let after = done.filter { definition.interruptAfter.contains($0.finished.node) }
                if !after.isEmpty {
                    let interrupts = after.map {
                        Interrupt(id: "\($0.task.id):after", node: $0.finished.node, taskID: $0.task.id, namespace: namespace, kind: .after, payload: nil)
                    }
                    return try await stop(at: interrupts, done: [], source: "interrupt")
                }
            }
        }
        return RunResult(status: .completed, state: state, interrupts: [], checkpointID: headID, threadID: thread, steps: stepsRun)
    }

    private func emitValues() {
        if let emit, modes.contains(.values) { emit(.values(state, step: step)) }
    }

    /// Runs a step's tasks, concurrently when there are several, skipping those whose writes a
    /// checkpoint already holds. Outcomes come back in task order.
    private func runStep(_ tasks: [PlannedTask]) async -> [TaskOutcome] {
        let runner = TaskRunner(definition: definition, cache: cache, scope: scope, namespace: namespace, step: step + 1, state: state)
        // The common case: one task, nothing restored from a checkpoint.
        if tasks.count == 1, pending.isEmpty, memories.isEmpty {
            let memory = TaskMemory(results: [:], resumes: [])
            if checkpointing { memories[tasks[0].id] = memory }
            return [await runner.run(tasks[0], memory: memory)]
        }
        var outcomes = [TaskOutcome?](repeating: nil, count: tasks.count)
        var toRun: [(index: Int, memory: TaskMemory)] = []
        toRun.reserveCapacity(tasks.count)
        let restoring = !pending.isEmpty || !memories.isEmpty
        for (index, task) in tasks.enumerated() {
            if restoring, let done = pending[task.id] {
                outcomes[index] = .done(done)
                continue
            }
            let memory = (restoring ? memories[task.id] : nil) ?? TaskMemory(results: [:], resumes: [])
            if checkpointing { memories[task.id] = memory }
            toRun.append((index, memory))
        }
        if toRun.count == 1 {
            outcomes[toRun[0].index] = await runner.run(tasks[toRun[0].index], memory: toRun[0].memory)
        } else if !toRun.isEmpty {
            // Children put their outcomes in their own slots, so the parent is not resumed once
            // per child; a failure throws, which cancels the siblings.
            let slots = OutcomeSlots(outcomes)
            do {
                try await withThrowingDiscardingTaskGroup { group in
                    for (index, memory) in toRun {
                        let task = tasks[index]
                        group.addTask {
                            let outcome = await runner.run(task, memory: memory)
                            slots.set(index, outcome)
                            if case .failed = outcome { throw SiblingFailed() }
                        }
                    }
                }
            } catch {}
            outcomes = slots.all
        }
        return outcomes.map { $0 ?? .failed(node: "", error: CancellationError()) }
    }

    /// Merges the step's updates in task order; a replace field written by two tasks is an
    /// error. Returns the writes in merge order when checkpointing (they are the checkpoint).
    private func merge(_ done: [(task: PlannedTask, finished: FinishedTask)]) throws -> [NodeWrite] {
        let fields = reducers
        if done.count > 1 {
            var writer: [Int: Int] = [:]
            for (position, (task, finished)) in done.enumerated() {
                for write in finished.writes where write.field >= 0 && fields[write.field].isReplace {
                    if let other = writer[write.field], other != position {
                        let first = done[other].task
                        throw error(
                            .conflictingWrites(field: fields[write.field].name, nodes: [first.label, task.label]),
                            node: "\(first.label), \(task.label)", step: step + 1
                        )
                    }
                    writer[write.field] = position
                }
            }
        }
        var writes: [NodeWrite] = []
        let keep = checkpointing
        for (_, finished) in done {
            for write in finished.writes {
                guard write.field >= 0 else { throw error(.undeclaredField, node: finished.node, step: step + 1) }
                do {
                    try fields[write.field].reduce(&state, write.value)
                } catch {
                    throw self.error(.nodeFailed, node: finished.node, underlying: error, step: step + 1)
                }
                if keep { writes.append(NodeWrite(node: finished.node, write: write)) }
            }
        }
        return writes
    }

    // MARK: Routing

    func collectRoutes(from index: Int, name: String, goto: [Route], into targets: inout Targets) async throws {
        for to in definition.successors[index] { targets.add(to) }
        for edge in definition.routers[index] {
            let routes: [Route]
            do {
                routes = try await edge.router(state)
            } catch {
                throw self.error(.nodeFailed, node: "router after \(name)", underlying: error)
            }
            for route in routes {
                guard route.node == END || edge.destinations.contains(route.node) else {
                    throw error(.invalidRoute("the router after '\(name)' returned '\(route.node)', which is not among its destinations \(edge.destinations)"), node: name)
                }
                try add(route, to: &targets, from: name)
            }
        }
        if !goto.isEmpty {
            let declared = index < definition.count ? definition.specs[index].destinations : []
            for route in goto {
                guard route.node == END || declared.contains(route.node) else {
                    throw error(.invalidRoute("'\(name)' routed to '\(route.node)', which it does not declare in destinations"), node: name)
                }
                try add(route, to: &targets, from: name)
            }
        }
    }

    private func add(_ route: Route, to targets: inout Targets, from name: String) throws {
        if route.node == END { return }
        guard let index = definition.node(route.node) else {
            throw error(.invalidRoute("'\(name)' routed to unknown node '\(route.node)'"), node: name)
        }
        if let payload = route.payload {
            targets.sends.append((index, route.node, payload))
        } else {
            targets.add(index)
        }
    }

    // MARK: Checkpoints

    /// `final`: the run returns (or throws) right after this checkpoint. The top-level run's
    /// last checkpoint is then left queued, and stored with the thread's release, in one write
    /// (`CheckpointWriter.finish`), before the run returns, as `.sync` promises.
    func checkpoint(source: String, writes: [NodeWrite], final: Bool = false,
                    body extra: ((inout CheckpointBody<S>) -> Void)? = nil) async throws {
        guard let writer = scope.writer, saver != nil, let thread else { return }
        var body = CheckpointBody<S>()
        body.writes = writes.map(EncodedWrite.init)
        body.next = try next.map { try $0.record }
        if !definition.waiting.isEmpty { body.barriers = barriers.records(definition: definition) }
        extra?(&body)
        let record = CheckpointRecord(
            threadID: thread, namespace: namespace, id: 0, parentID: headID, step: step, source: source,
            createdAt: scope.config.environment.now(), snapshot: nil, body: try body.encoded()
        )
        headID = try await writer.append(record, durability: final && namespace.isEmpty ? .exit : scope.config.durability)
        if scope.sink.wants(.debug), let headID {
            scope.sink.send?(.debug(.checkpoint(id: headID, step: step, namespace: namespace, source: source)))
        }
    }

    /// Saves a checkpoint for a step that stopped part-way (interrupt, breakpoint or failure):
    /// the same state and tasks, plus what finished tasks wrote, task results and resume values.
    private func stop(
        at interrupts: [Interrupt], done: [(task: PlannedTask, finished: FinishedTask)], source: String, failure: String? = nil
    ) async throws -> RunResult<S> {
        if checkpointing {
            var pendingRecords: [PendingRecord<S>] = []
            var finishedTasks: [String: FinishedTask] = pending
            for (task, finished) in done { finishedTasks[task.id] = finished }
            // A task that wrote an undeclared field is not kept: run again, it fails again.
            for (id, finished) in finishedTasks where finished.writes.allSatisfy({ $0.field >= 0 }) {
                pendingRecords.append(PendingRecord(
                    task: id, node: finished.node,
                    writes: finished.writes.map { EncodedWrite(NodeWrite(node: finished.node, write: $0)) },
                    goto: try finished.goto.map { try TaskRecord(node: $0.node, id: "", payload: $0.payload?.encoded()) }
                ))
            }
            pendingRecords.sort { $0.task < $1.task }
            var resumes: [String: [JSONValue]] = [:]
            var results: [String: [String: JSONValue]] = [:]
            for (id, memory) in memories {
                let taskResults = memory.results
                if !taskResults.isEmpty { results[id] = taskResults }
                let taskResumes = memory.resumes
                if !taskResumes.isEmpty { resumes[id] = taskResumes }
            }
            try await checkpoint(source: source, writes: [], final: true) { body in
                body.pending = pendingRecords.isEmpty ? nil : pendingRecords
                body.interrupts = interrupts.isEmpty ? nil : interrupts
                body.resumes = resumes.isEmpty ? nil : resumes
                body.taskResults = results.isEmpty ? nil : results
                body.error = failure
            }
        }
        return RunResult(status: .interrupted, state: state, interrupts: interrupts, checkpointID: headID, threadID: thread, steps: stepsRun)
    }
}
