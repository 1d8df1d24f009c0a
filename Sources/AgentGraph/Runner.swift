import Foundation

/// A task of a step: a node to run, with its `Send` payload if it has one.
struct PlannedTask: Sendable {
    let node: String
    let id: String
    let payload: Payload?

    var record: TaskRecord {
        get throws { TaskRecord(node: node, id: id, payload: try payload?.encoded()) }
    }

    init(node: String, id: String, payload: Payload?) {
        self.node = node
        self.id = id
        self.payload = payload
    }

    init(_ record: TaskRecord) {
        self.init(node: record.node, id: record.id, payload: record.payload.map(Payload.init(json:)))
    }

    /// How errors name this task: the node, and which send it was.
    var label: String {
        guard payload != nil, let hash = id.lastIndex(of: "#") else { return node }
        return "\(node) (send \(id[id.index(after: hash)...]))"
    }
}

enum TaskOutcome<S: GraphState>: Sendable {
    /// `node` is the node whose update this is: the task's, or its fallback's.
    case done(node: String, update: StateUpdate<S>)
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

    func run(_ task: PlannedTask, memory: TaskMemory) async -> TaskOutcome<S> {
        guard let spec = definition.nodes[task.node] else {
            return .failed(node: task.node, error: GraphError(.invalidRoute("no node named '\(task.node)'")))
        }
        let policy = definition.policy(for: task.node)
        let environment = scope.config.environment
        var cacheKey: String?
        if let cachePolicy = policy.cache {
            cacheKey = try? cacheKeyFor(task)
            if let key = cacheKey, let data = await cache.get(key, now: environment.now()),
               let update = try? decodeCached(data) {
                debug(.taskFinished(node: task.node, taskID: task.id, step: step, namespace: namespace, duration: .zero, outcome: "cached"))
                return .done(node: task.node, update: update)
            }
            _ = cachePolicy
        }
        var attempt = 1
        while true {
            memory.restart()
            let context = NodeContext(
                node: task.node, taskID: task.id, step: step, namespace: namespace, attempt: attempt,
                failure: nil, scope: scope, memory: memory
            )
            do {
                let update = try await invoke(spec, task: task, context: context, timeout: policy.timeout)
                if let key = cacheKey, let data = try? encodeCached(update, node: task.node) {
                    await cache.set(key, data, expiresAt: policy.cache?.ttl.map { environment.now().addingTimeInterval($0.seconds) })
                }
                return .done(node: task.node, update: update)
            } catch let interrupt as NodeInterrupt {
                return .interrupted(interrupt.payloads)
            } catch {
                if let retry = policy.retry, attempt < retry.maxAttempts, retry.retryOn(error), !Task.isCancelled {
                    do {
                        try await environment.sleep(retry.delay(after: attempt, random: environment.random()))
                    } catch {
                        return .failed(node: task.node, error: error)
                    }
                    attempt += 1
                    continue
                }
                if let fallback = policy.fallback, fallback != task.node, let fallbackSpec = definition.nodes[fallback],
                   !(error is CancellationError), !Task.isCancelled {
                    let context = NodeContext(
                        node: fallback, taskID: task.id, step: step, namespace: namespace, attempt: 1,
                        failure: NodeFailure(node: task.node, error: error), scope: scope, memory: memory
                    )
                    do {
                        let update = try await invoke(fallbackSpec, task: task, context: context, timeout: definition.policy(for: fallback).timeout)
                        return .done(node: fallback, update: update)
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

    private func invoke(_ spec: NodeSpec<S>, task: PlannedTask, context: NodeContext, timeout: Duration?) async throws -> StateUpdate<S> {
        let sink = scope.sink
        let started = sink.wants(.debug) ? ContinuousClock.now : nil
        if started != nil {
            debug(.taskStarted(node: context.node, taskID: task.id, step: step, namespace: namespace, attempt: context.attempt))
        }
        do {
            let update: StateUpdate<S>
            if let timeout {
                update = try await Self.withTimeout(timeout) { [state] in try await spec.action(state, task.payload, context) }
            } else {
                update = try await spec.action(state, task.payload, context)
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
    static func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
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
            writes: update.writes.map { EncodedWrite(node: node, write: $0) },
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
        update.writes = writes.map(\.write)
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
                try fields[write.write.field].reduce(&state, write.write.value)
            } catch {
                throw GraphError(.corruptCheckpoint("checkpoint \(record.id): \(error)"), node: write.node, thread: record.threadID)
            }
        }
        return state
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

    var state = S()
    var step = -2
    var headID: Int64?
    var next: [PlannedTask] = []
    var pending: [String: PendingRecord<S>] = [:]
    var memories: [String: TaskMemory] = [:]
    var skipBreakpointBefore = false
    /// A subgraph called afresh ignores its namespace's earlier checkpoints.
    var startFresh = false

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
    }

    var thread: String? { scope.config.threadID }

    func error(_ kind: GraphError.Kind, node: String? = nil, underlying: (any Error)? = nil) -> GraphError {
        var error = GraphError(kind, node: node, step: step, thread: thread, underlying: underlying)
        error.namespace = namespace
        return error
    }

    // MARK: Starting

    func run(_ input: RunInput<S>, checkpointID: Int64?) async throws -> RunResult<S> {
        var base: LoadedCheckpoint<S>?
        if let saver, let thread, !startFresh {
            base = try CheckpointReader<S>.load(try await saver.records(thread: thread, namespace: namespace), id: checkpointID)
        } else if checkpointID != nil {
            throw error(.noCheckpointer)
        }
        if let base {
            state = base.state
            step = base.record.step
            headID = base.record.id
        }
        switch input {
        case .update(let update):
            try await start(with: update)
            try await checkpoint(source: "input", writes: update.writes.map { EncodedWrite(node: "__input__", write: $0) })
            emitValues()
        case .resume(let value):
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
    func forkWrites(_ update: StateUpdate<S>, asNode node: String) throws -> [EncodedWrite<S>] {
        for write in update.writes where write.field < 0 { throw error(.undeclaredField, node: node) }
        state = try update.applied(to: state)
        return update.writes.map { EncodedWrite(node: node, write: $0) }
    }

    private func start(with update: StateUpdate<S>) async throws {
        _ = try forkWrites(update, asNode: "__input__")
        step += 1
        pending = [:]
        memories = [:]
        next = []
        var targets = Targets()
        try await collectRoutes(from: START, update: StateUpdate(), into: &targets)
        next = targets.tasks(order: definition.order, step: step + 1)
    }

    /// Picks up a checkpoint's unfinished step: its tasks, the writes of those that finished,
    /// their task results and resume values (plus the new resume value, for interrupted ones).
    private func restore(_ base: LoadedCheckpoint<S>?, resume: (Interrupt) -> JSONValue?) throws {
        guard let base else { throw error(.invalidResume("the thread has no checkpoint")) }
        let body = base.body
        next = body.next.map(PlannedTask.init)
        pending = Dictionary((body.pending ?? []).map { ($0.task, $0) }, uniquingKeysWith: { _, new in new })
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
        var ids = Set(resumes.keys)
        ids.formUnion((body.taskResults ?? [:]).keys)
        memories = [:]
        for id in ids {
            memories[id] = TaskMemory(results: body.taskResults?[id] ?? [:], resumes: resumes[id] ?? [])
        }
    }

    // MARK: The loop

    private var stepsRun = 0

    private func loop() async throws -> RunResult<S> {
        while !next.isEmpty {
            try Task.checkCancellation()
            if stepsRun >= scope.config.recursionLimit {
                throw error(.recursionLimit(scope.config.recursionLimit), node: next.map(\.node).joined(separator: ", "))
            }
            if !skipBreakpointBefore, let task = next.first(where: { definition.interruptBefore.contains($0.node) }) {
                let interrupt = Interrupt(
                    id: "\(task.id):before", node: task.node, taskID: task.id, namespace: namespace, kind: .before, payload: nil
                )
                return try await stop(at: [interrupt], done: [], source: "interrupt")
            }
            skipBreakpointBefore = false
            let tasks = next
            let outcomes = await runStep(tasks)
            stepsRun += 1

            var done: [(PlannedTask, String, StateUpdate<S>)] = []
            var interrupts: [Interrupt] = []
            var failure: (task: PlannedTask, node: String, error: any Error)?
            for (task, outcome) in zip(tasks, outcomes) {
                switch outcome {
                case .done(let node, let update):
                    done.append((task, node, update))
                case .interrupted(let payloads):
                    for (index, payload) in payloads.enumerated() {
                        let count = memories[task.id]?.resumes.count ?? 0
                        interrupts.append(Interrupt(
                            id: "\(task.id):\(count + index)", node: task.node, taskID: task.id,
                            namespace: namespace, kind: .node, payload: payload
                        ))
                    }
                case .failed(let node, let error):
                    // A sibling's failure cancels the others; report the cause, not the cancellations.
                    if failure == nil || (failure?.error is CancellationError && !(error is CancellationError)) {
                        failure = (task, node, error)
                    }
                }
            }
            if let failure {
                let cause: GraphError
                if var graphError = failure.error as? GraphError {
                    graphError.node = graphError.node ?? failure.node
                    graphError.step = step + 1
                    graphError.thread = thread
                    graphError.namespace = namespace
                    cause = graphError
                } else {
                    var wrapped = error(.nodeFailed, node: failure.node, underlying: failure.error)
                    wrapped.step = step + 1
                    cause = wrapped
                }
                _ = try? await stop(at: [], done: done, source: "error", failure: cause.description)
                throw cause
            }
            if !interrupts.isEmpty {
                return try await stop(at: interrupts, done: done, source: "interrupt")
            }

            let writes = try merge(done)
            step += 1
            pending = [:]
            memories = [:]
            var targets = Targets()
            for (_, node, update) in done {
                try await collectRoutes(from: node, update: update, into: &targets)
            }
            next = targets.tasks(order: definition.order, step: step + 1)
            try await checkpoint(source: "loop", writes: writes)
            if let emit {
                if modes.contains(.updates) {
                    for (task, node, update) in done {
                        emit(.update(NodeUpdate(node: node, taskID: task.id, step: step, update: update)))
                    }
                }
                emitValues()
            }
            if !next.isEmpty, !definition.interruptAfter.isEmpty {
                let after = done.filter { definition.interruptAfter.contains($0.1) }
                if !after.isEmpty {
                    let interrupts = after.map {
                        Interrupt(id: "\($0.0.id):after", node: $0.1, taskID: $0.0.id, namespace: namespace, kind: .after, payload: nil)
                    }
                    return try await stop(at: interrupts, done: [], source: "interrupt", keepStep: true)
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
    private func runStep(_ tasks: [PlannedTask]) async -> [TaskOutcome<S>] {
        let runner = TaskRunner(definition: definition, cache: cache, scope: scope, namespace: namespace, step: step + 1, state: state)
        var outcomes = [TaskOutcome<S>?](repeating: nil, count: tasks.count)
        var toRun: [Int] = []
        for (index, task) in tasks.enumerated() {
            if let done = pending[task.id] {
                outcomes[index] = .done(node: done.node, update: done.update)
            } else {
                toRun.append(index)
            }
        }
        let memory = toRun.map { memories[tasks[$0].id] ?? TaskMemory(results: [:], resumes: []) }
        for (position, index) in toRun.enumerated() { memories[tasks[index].id] = memory[position] }
        if toRun.count == 1 {
            outcomes[toRun[0]] = await runner.run(tasks[toRun[0]], memory: memory[0])
        } else if !toRun.isEmpty {
            await withTaskGroup(of: (Int, TaskOutcome<S>).self) { group in
                for (position, index) in toRun.enumerated() {
                    let task = tasks[index]
                    let taskMemory = memory[position]
                    group.addTask { (index, await runner.run(task, memory: taskMemory)) }
                }
                for await (index, outcome) in group {
                    outcomes[index] = outcome
                    if case .failed = outcome { group.cancelAll() }
                }
            }
        }
        return outcomes.map { $0 ?? .failed(node: "", error: CancellationError()) }
    }

    /// Merges the step's updates in task order; a replace field written by two tasks is an error.
    private func merge(_ done: [(PlannedTask, String, StateUpdate<S>)]) throws -> [EncodedWrite<S>] {
        let fields = S.schema.fields
        var writer: [Int: PlannedTask] = [:]
        var writes: [EncodedWrite<S>] = []
        for (task, node, update) in done {
            for write in update.writes {
                guard write.field >= 0 else {
                    var undeclared = error(.undeclaredField, node: node)
                    undeclared.step = step + 1
                    throw undeclared
                }
                if fields[write.field].isReplace {
                    if let other = writer[write.field], other.id != task.id {
                        var conflict = error(.conflictingWrites(field: fields[write.field].name, nodes: [other.label, task.label]), node: "\(other.label), \(task.label)")
                        conflict.step = step + 1
                        throw conflict
                    }
                    writer[write.field] = task
                }
                writes.append(EncodedWrite(node: node, write: write))
            }
        }
        for write in writes {
            do {
                try fields[write.write.field].reduce(&state, write.write.value)
            } catch {
                throw self.error(.nodeFailed, node: write.node, underlying: error)
            }
        }
        return writes
    }

    // MARK: Routing

    struct Targets {
        var nodes: Set<String> = []
        var sends: [(String, Payload)] = []

        mutating func add(_ route: Route) {
            if route.node == END { return }
            if let payload = route.payload {
                sends.append((route.node, payload))
            } else {
                nodes.insert(route.node)
            }
        }

        func tasks(order: [String: Int], step: Int) -> [PlannedTask] {
            let plain = nodes.sorted { order[$0, default: .max] < order[$1, default: .max] }
                .map { PlannedTask(node: $0, id: "\($0)@\(step)", payload: nil) }
            let sent = sends.enumerated().map { index, send in
                PlannedTask(node: send.0, id: "\(send.0)@\(step)#\(index)", payload: send.1)
            }
            return plain + sent
        }
    }

    func collectRoutes(from node: String, update: StateUpdate<S>, into targets: inout Targets) async throws {
        for to in definition.edges[node, default: []] { targets.add(Route(to)) }
        for edge in definition.conditional[node, default: []] {
            let routes: [Route]
            do {
                routes = try await edge.router(state)
            } catch {
                throw self.error(.nodeFailed, node: "router after \(node)", underlying: error)
            }
            for route in routes {
                guard route.node == END || edge.destinations.contains(route.node) else {
                    throw error(.invalidRoute("the router after '\(node)' returned '\(route.node)', which is not among its destinations \(edge.destinations)"), node: node)
                }
                targets.add(route)
            }
        }
        let declared = definition.nodes[node]?.destinations ?? []
        for route in update.goto {
            guard route.node == END || declared.contains(route.node) else {
                throw error(.invalidRoute("'\(node)' routed to '\(route.node)', which it does not declare in destinations"), node: node)
            }
            targets.add(route)
        }
    }

    // MARK: Checkpoints

    func checkpoint(source: String, writes: [EncodedWrite<S>], body extra: ((inout CheckpointBody<S>) -> Void)? = nil) async throws {
        guard let writer = scope.writer, let thread else { return }
        var body = CheckpointBody<S>()
        body.writes = writes
        body.next = try next.map { try $0.record }
        extra?(&body)
        let record = CheckpointRecord(
            threadID: thread, namespace: namespace, id: 0, parentID: headID, step: step, source: source,
            createdAt: scope.config.environment.now(), snapshot: nil, body: try JSONCoding.encoder.encode(body)
        )
        headID = try await writer.append(record, durability: scope.config.durability)
        if scope.sink.wants(.debug), let headID {
            scope.sink.send?(.debug(.checkpoint(id: headID, step: step, namespace: namespace, source: source)))
        }
    }

    /// Saves a checkpoint for a step that stopped part-way (interrupt, breakpoint or failure):
    /// the same state and tasks, plus what finished tasks wrote, task results and resume values.
    private func stop(
        at interrupts: [Interrupt], done: [(PlannedTask, String, StateUpdate<S>)], source: String,
        failure: String? = nil, keepStep: Bool = false
    ) async throws -> RunResult<S> {
        var pendingRecords = Array(pending.values)
        for (task, node, update) in done where pending[task.id] == nil {
            pendingRecords.append(PendingRecord(
                task: task.id, node: node,
                writes: update.writes.filter { $0.field >= 0 }.map { EncodedWrite(node: node, write: $0) },
                goto: try update.goto.map { try TaskRecord(node: $0.node, id: "", payload: $0.payload?.encoded()) }
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
        if saver != nil, scope.writer != nil {
            try await checkpoint(source: source, writes: []) { body in
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
