import Foundation
import Synchronization

/// One checkpoint as a checkpointer stores it. `body` holds what the step changed (the
/// writes, as JSON), not the whole state: the state at a checkpoint is its nearest
/// `snapshot` ancestor with the writes on the way applied. Snapshots exist only where a
/// chain starts: a thread's first checkpoint is written as writes onto the empty state,
/// and pruning turns the oldest kept checkpoint into a snapshot.
public struct CheckpointRecord: Sendable, Equatable {
    public var threadID: String
    /// "" for the top graph; subgraphs nest as "parentTask|childTask".
    public var namespace: String
    /// Unique within the thread and increasing: it is also the thread's version.
    public var id: Int64
    public var parentID: Int64?
    public var step: Int
    /// input, loop, update, interrupt, error.
    public var source: String
    public var createdAt: Date
    public var snapshot: Data?
    public var body: Data

    public init(
        threadID: String, namespace: String, id: Int64, parentID: Int64?, step: Int, source: String,
        createdAt: Date, snapshot: Data?, body: Data
    ) {
        self.threadID = threadID
        self.namespace = namespace
        self.id = id
        self.parentID = parentID
        self.step = step
        self.source = source
        self.createdAt = createdAt
        self.snapshot = snapshot
        self.body = body
    }

    /// Bytes of state data held: body plus snapshot.
    public var storedBytes: Int { body.count + (snapshot?.count ?? 0) }
}

/// Durable storage of checkpoints, with the per-thread lease and version that keep two runs
/// from writing one thread at once.
///
/// A run `claim`s the thread (refused with `CheckpointConflict.busy` while another run's lease
/// is live), `put`s checkpoints whose ids continue from the claimed version (refused with
/// `.versionMismatch` if the version moved or the lease was taken), and `release`s it. A run
/// on a thread it knows is new claims it with its first checkpoints (`create`), and a run
/// stores its last ones with the release (`putAndRelease`): a saver that can do each in one
/// write (the SQL saver, in one transaction) saves a write at each end of every run.
public protocol CheckpointSaver: Sendable {
    /// Takes the thread's lease until `leaseUntil`; returns its version (the last checkpoint
    /// id, 0 for a new thread).
    func claim(thread: String, runID: String, now: Date, leaseUntil: Date) async throws -> Int64
    /// Stores checkpoints if the thread's version is still `expectedVersion` and the lease is
    /// this run's; sets the version to the last record's id and extends the lease. An empty
    /// list only extends the lease.
    func put(_ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64, leaseUntil: Date) async throws
    func release(thread: String, runID: String) async throws
    /// Takes the lease of a thread never written (version 0) and stores its first checkpoints,
    /// whose ids start at 1; throws `CheckpointConflict.busy` when the thread has checkpoints
    /// or another run's live lease. The default claims, then puts.
    func create(_ records: [CheckpointRecord], thread: String, runID: String, now: Date, leaseUntil: Date) async throws
    /// Stores a run's last checkpoints, as `put` does, and gives up its lease; with no records
    /// it only releases. The default puts, then releases.
    func putAndRelease(_ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64) async throws
    /// A namespace's checkpoints, oldest first.
    func records(thread: String, namespace: String) async throws -> [CheckpointRecord]
    /// Deletes checkpoints and stores snapshots on others, in one transaction.
    func prune(thread: String, namespace: String, deleting: [Int64], snapshots: [Int64: Data]) async throws
    func deleteThread(_ thread: String) async throws
}

extension CheckpointSaver {
    public func create(_ records: [CheckpointRecord], thread: String, runID: String, now: Date, leaseUntil: Date) async throws {
        let version = try await claim(thread: thread, runID: runID, now: now, leaseUntil: leaseUntil)
        guard version == 0 else {
            try? await release(thread: thread, runID: runID)
            throw CheckpointConflict.busy
        }
        do {
            try await put(records, thread: thread, runID: runID, expectedVersion: 0, leaseUntil: leaseUntil)
        } catch {
            // The writer never counts the thread as claimed: let it go here.
            try? await release(thread: thread, runID: runID)
            throw error
        }
    }

    /// A failed release is not the run's failure: its checkpoints are stored, and the lease
    /// runs out by itself.
    public func putAndRelease(_ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64) async throws {
        if !records.isEmpty {
            try await put(records, thread: thread, runID: runID, expectedVersion: expectedVersion, leaseUntil: Date())
        }
        try? await release(thread: thread, runID: runID)
    }
}

/// Checkpoints in process memory, for tests and single-process use.
public final class InMemorySaver: CheckpointSaver {
    struct Thread {
        var version: Int64 = 0
        var runID: String?
        var leaseUntil: Date = .distantPast
        var records: [String: [CheckpointRecord]] = [:]
    }

    private let threads = Mutex<[String: Thread]>([:])

    public init() {}

    public func claim(thread: String, runID: String, now: Date, leaseUntil: Date) async throws -> Int64 {
        try threads.withLock { threads in
            var entry = threads[thread] ?? Thread()
            if let holder = entry.runID, holder != runID, entry.leaseUntil > now { throw CheckpointConflict.busy }
            entry.runID = runID
            entry.leaseUntil = leaseUntil
            threads[thread] = entry
            return entry.version
        }
    }

    public func put(
        _ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64, leaseUntil: Date
    ) async throws {
        try threads.withLock { threads in
            guard var entry = threads[thread], entry.runID == runID, entry.version == expectedVersion else {
                throw CheckpointConflict.versionMismatch
            }
            for record in records { entry.records[record.namespace, default: []].append(record) }
            if let last = records.last { entry.version = last.id }
            entry.leaseUntil = leaseUntil
            threads[thread] = entry
        }
    }

    public func release(thread: String, runID: String) async throws {
        threads.withLock { threads in
            guard threads[thread]?.runID == runID else { return }
            threads[thread]?.runID = nil
            threads[thread]?.leaseUntil = .distantPast
        }
    }

    public func records(thread: String, namespace: String) async throws -> [CheckpointRecord] {
        threads.withLock { $0[thread]?.records[namespace] ?? [] }
    }

    public func prune(thread: String, namespace: String, deleting: [Int64], snapshots: [Int64: Data]) async throws {
        threads.withLock { threads in
            guard var list = threads[thread]?.records[namespace] else { return }
            let doomed = Set(deleting)
            list.removeAll { doomed.contains($0.id) }
            for index in list.indices {
                if let snapshot = snapshots[list[index].id] { list[index].snapshot = snapshot }
            }
            threads[thread]?.records[namespace] = list
        }
    }

    public func deleteThread(_ thread: String) async throws {
        _ = threads.withLock { $0.removeValue(forKey: thread) }
    }
}

// MARK: - Body encoding

/// Keys of one encoded write: node, field, value.
public enum WriteCodingKey: String, CodingKey {
    case node = "n", field = "f", value = "v"
}

/// A write as checkpointed: which node wrote which field, and the value it wrote.
struct EncodedWrite<S: GraphState>: Codable, Sendable {
    let write: NodeWrite

    init(_ write: NodeWrite) {
        self.write = write
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: WriteCodingKey.self)
        let node = try container.decode(String.self, forKey: .node)
        let name = try container.decode(String.self, forKey: .field)
        guard let index = S.schema.indexByName[name] else {
            throw GraphError(.corruptCheckpoint("field '\(name)' is not in the state's schema"))
        }
        write = NodeWrite(node: node, write: FieldWrite(field: index, value: try S.schema.fields[index].decodeValue(container)))
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: WriteCodingKey.self)
        try container.encode(write.node, forKey: .node)
        let field = S.schema.fields[write.write.field]
        try container.encode(field.name, forKey: .field)
        try field.encodeValue(write.write.value, &container)
    }
}

/// A task as checkpointed.
struct TaskRecord: Codable, Sendable {
    var node: String
    var id: String
    var payload: JSONValue?

    enum CodingKeys: String, CodingKey { case node = "n", id = "i", payload = "p" }

    init(node: String, id: String, payload: JSONValue?) {
        self.node = node
        self.id = id
        self.payload = payload
    }

    // A payload that is JSON null is still a payload: present key, `.null` value.
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        node = try container.decode(String.self, forKey: .node)
        id = try container.decode(String.self, forKey: .id)
        payload = container.contains(.payload) ? try container.decode(JSONValue.self, forKey: .payload) : nil
    }
}

/// A waiting edge's progress as checkpointed: the edge (its target and its sources) and the
/// sources that have finished since the target last ran.
struct BarrierRecord: Codable, Sendable, Equatable {
    var to: String
    var from: [String]
    var done: [String]

    enum CodingKeys: String, CodingKey { case to = "t", from = "f", done = "d" }
}

/// What finished tasks of an unfinished step wrote, kept so a resume does not rerun them.
struct PendingRecord<S: GraphState>: Codable, Sendable {
    var task: String
    var node: String
    var writes: [EncodedWrite<S>]
    var goto: [TaskRecord]

    enum CodingKeys: String, CodingKey { case task = "t", node = "n", writes = "w", goto = "g" }
}

/// An interrupt a run stopped at.
public struct Interrupt: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// `context.interrupt(_:)` in a node.
        case node
        /// A static breakpoint before or after a node.
        case before, after
    }

    /// Resume a specific interrupt by this id.
    public let id: String
    public let node: String
    public let taskID: String
    public let namespace: String
    public let kind: Kind
    public let payload: JSONValue?

    public init(id: String, node: String, taskID: String, namespace: String, kind: Kind, payload: JSONValue?) {
        self.id = id
        self.node = node
        self.taskID = taskID
        self.namespace = namespace
        self.kind = kind
        self.payload = payload
    }

    enum CodingKeys: String, CodingKey { case id, node, taskID, namespace, kind, payload }

    // A payload that is JSON null is still a payload.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        node = try container.decode(String.self, forKey: .node)
        taskID = try container.decode(String.self, forKey: .taskID)
        namespace = try container.decode(String.self, forKey: .namespace)
        kind = try container.decode(Kind.self, forKey: .kind)
        payload = container.contains(.payload) ? try container.decode(JSONValue.self, forKey: .payload) : nil
    }
}

/// Writes JSON text by hand for the checkpoint's common shape; `JSONEncoder` is several
/// microseconds per call, which is most of a step's cost.
enum JSONText {
    static func appendString(_ text: String, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: buffer.append(byte)
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }

    static func appendStrings(_ texts: [String], to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "["))
        for (position, text) in texts.enumerated() {
            if position > 0 { buffer.append(UInt8(ascii: ",")) }
            appendString(text, to: &buffer)
        }
        buffer.append(UInt8(ascii: "]"))
    }
}

/// Everything but the state: the step's writes, the tasks to run next, the waiting edges'
/// progress, and for a step that stopped part-way, what is needed to finish it without
/// redoing work.
struct CheckpointBody<S: GraphState>: Codable, Sendable {
    var writes: [EncodedWrite<S>] = []
    var next: [TaskRecord] = []
    /// Waiting edges with sources finished, whole at every checkpoint (like `next`). Absent
    /// in checkpoints written before waiting edges existed, and when none is waiting.
    var barriers: [BarrierRecord]?
    var pending: [PendingRecord<S>]?
    var interrupts: [Interrupt]?
    var resumes: [String: [JSONValue]]?
    var taskResults: [String: [String: JSONValue]]?
    var error: String?

    enum CodingKeys: String, CodingKey {
        case writes = "w", next = "x", barriers = "b", pending = "p", interrupts = "i", resumes = "r", taskResults = "t", error = "e"
    }

    /// The body as JSON: by hand for a plain step (writes, next tasks without payloads and
    /// barriers), through `JSONEncoder` otherwise. Both read back through `Decodable`.
    func encoded() throws -> Data {
        guard pending == nil, interrupts == nil, resumes == nil, taskResults == nil, error == nil,
              next.allSatisfy({ $0.payload == nil }) else {
            return try JSONCoding.encoder.encode(self)
        }
        let fields = S.schema.fields
        var buffer: [UInt8] = []
        buffer.reserveCapacity(64 + writes.count * 48 + next.count * 32)
        buffer.append(contentsOf: #"{"w":["#.utf8)
        for (position, write) in writes.enumerated() {
            if position > 0 { buffer.append(UInt8(ascii: ",")) }
            let field = fields[write.write.write.field]
            buffer.append(contentsOf: #"{"n":"#.utf8)
            JSONText.appendString(write.write.node, to: &buffer)
            buffer.append(contentsOf: #","f":"#.utf8)
            JSONText.appendString(field.name, to: &buffer)
            buffer.append(contentsOf: #","v":"#.utf8)
            try field.appendJSON(write.write.write.value, &buffer)
            buffer.append(UInt8(ascii: "}"))
        }
        buffer.append(contentsOf: #"],"x":["#.utf8)
        for (position, task) in next.enumerated() {
            if position > 0 { buffer.append(UInt8(ascii: ",")) }
            buffer.append(contentsOf: #"{"n":"#.utf8)
            JSONText.appendString(task.node, to: &buffer)
            buffer.append(contentsOf: #","i":"#.utf8)
            JSONText.appendString(task.id, to: &buffer)
            buffer.append(UInt8(ascii: "}"))
        }
        buffer.append(UInt8(ascii: "]"))
        if let barriers {
            buffer.append(contentsOf: #","b":["#.utf8)
            for (position, barrier) in barriers.enumerated() {
                if position > 0 { buffer.append(UInt8(ascii: ",")) }
                buffer.append(contentsOf: #"{"t":"#.utf8)
                JSONText.appendString(barrier.to, to: &buffer)
                buffer.append(contentsOf: #","f":"#.utf8)
                JSONText.appendStrings(barrier.from, to: &buffer)
                buffer.append(contentsOf: #","d":"#.utf8)
                JSONText.appendStrings(barrier.done, to: &buffer)
                buffer.append(UInt8(ascii: "}"))
            }
            buffer.append(UInt8(ascii: "]"))
        }
        buffer.append(UInt8(ascii: "}"))
        return Data(buffer)
    }
}

// MARK: - Writer

/// How eagerly checkpoints reach the checkpointer.
public enum Durability: Sendable {
    /// Each step's checkpoint is stored before the next step starts. The top-level run's last
    /// one is stored with the release of the thread, as the run returns: `invoke` returns
    /// after it is stored, but a stream's events for that last step may arrive before.
    case sync
    /// Checkpoints are stored in the background, in batches, while later steps run; the run
    /// waits for all of them before it returns, interrupts or fails. A crash loses at most
    /// the steps not yet stored, and a resume continues from the last stored one. A side
    /// effect (`NodeContext.task`) waits until every checkpoint before it is stored, so it
    /// never runs ahead of the state that asked for it; on a new thread (`threadIsNew`) that
    /// includes the claim, which other nodes do not wait for.
    case async
    /// Checkpoints are stored when the run returns, interrupts or fails.
    case exit
}

/// Stores one run's checkpoints (its subgraphs' too) in order, batching those that queue up
/// while a write is in flight. Queuing is synchronous (a lock, no actor hop), so a step
/// under `.async` durability pays only for encoding its checkpoint.
///
/// A writer for a run on a new thread (`claimed: false`) takes the thread with its first
/// write (`CheckpointSaver.create`); `finish` stores what is still queued with the release.
final class CheckpointWriter: Sendable {
    struct State {
        var nextID: Int64
        var version: Int64
        var queue: [CheckpointRecord] = []
        /// How many records at the queue's end came as `.exit`: a drain leaves them for
        /// `finish` (or a `flush`), so a run's last checkpoint is stored with the release.
        var held = 0
        var draining: Task<Void, Never>?
        var failure: (any Error)?
        /// Whether the run holds the thread's lease (false until a new thread's first write).
        var claimed: Bool
        /// Set by `finish`: the lease is given up, nothing more is stored.
        var finished = false
    }

    let saver: any CheckpointSaver
    let thread: String
    let runID: String
    let leaseDuration: Duration
    let now: @Sendable () -> Date
    /// Whether an unclaimed thread's first write may be stored in the background (the run's
    /// durability is `.async`) rather than before `append` returns.
    let claimsInBackground: Bool
    private let state: Mutex<State>

    init(saver: any CheckpointSaver, thread: String, runID: String, version: Int64, leaseDuration: Duration,
         now: @escaping @Sendable () -> Date, claimed: Bool = true, claimsInBackground: Bool = false) {
        self.saver = saver
        self.thread = thread
        self.runID = runID
        self.leaseDuration = leaseDuration
        self.now = now
        self.claimsInBackground = claimsInBackground
        self.state = Mutex(State(nextID: version + 1, version: version, claimed: claimed))
    }

    var leaseUntil: Date { now().addingTimeInterval(leaseDuration.seconds) }

    /// Queues a checkpoint, giving it the next id. Until the thread is claimed, a checkpoint
    /// is stored before this returns unless the durability is `.async`: then the claim is
    /// stored in the background like any checkpoint, nodes run meanwhile, and a side effect
    /// (`NodeContext.task`) waits for it (`flush`).
    func append(_ record: CheckpointRecord, durability: Durability) async throws -> Int64 {
        let (id, claimed): (Int64, Bool) = try state.withLock { state in
            if let failure = state.failure { throw failure }
            // The lease is given up: nothing more may be stored under it.
            if state.finished { throw CheckpointConflict.versionMismatch }
            var record = record
            record.id = state.nextID
            state.nextID += 1
            state.queue.append(record)
            // A run's last checkpoint comes as `.exit`: under `.async` it waits for `finish`
            // (behind a claim still in flight), even while a drain is running.
            let mode = state.claimed || claimsInBackground ? durability : .sync
            state.held = mode == .exit ? state.held + 1 : 0
            return (record.id, state.claimed)
        }
        switch claimed || claimsInBackground ? durability : .sync {
        case .sync:
            try await flush()
        case .async:
            startDraining()
        case .exit:
            break
        }
        return id
    }

    /// Whether a write failed (the checkpoints that follow would fail too).
    var hasFailed: Bool { state.withLock { $0.failure != nil } }

    /// Waits until every queued checkpoint is stored.
    func flush() async throws {
        state.withLock { $0.held = 0 }
        startDraining()
        while let draining = state.withLock({ $0.draining }) {
            await draining.value
        }
        if let failure = state.withLock({ $0.failure }) { throw failure }
    }

    /// Stores what is still queued and gives up the thread's lease, in one write where the
    /// saver can (`CheckpointSaver.putAndRelease`). A run's last checkpoint waits for this
    /// (see `Runner.checkpoint(final:)`), so a run ends with one write, not two. Afterwards
    /// the writer stores nothing; a second call does nothing.
    func finish() async throws {
        while let draining = state.withLock({ $0.draining }) {
            await draining.value
        }
        let taken: (batch: [CheckpointRecord], version: Int64, failure: (any Error)?, claimed: Bool)? = state.withLock { state in
            guard !state.finished else { return nil }
            state.finished = true
            defer {
                state.queue = []
                state.held = 0
            }
            return (state.queue, state.version, state.failure, state.claimed)
        }
        guard let (batch, version, failure, claimed) = taken else { return }
        if let failure {
            if claimed { try? await saver.release(thread: thread, runID: runID) }
            throw failure
        }
        if !claimed {
            // The first write never happened (or failed): there is no lease to give up.
            guard !batch.isEmpty else { return }
            try await saver.create(batch, thread: thread, runID: runID, now: now(), leaseUntil: leaseUntil)
            try? await saver.release(thread: thread, runID: runID)
            return
        }
        do {
            try await saver.putAndRelease(batch, thread: thread, runID: runID, expectedVersion: version)
            if let last = batch.last { state.withLock { $0.version = last.id } }
        } catch {
            // Not stored: at least let the thread go (a lost lease is not ours to release).
            try? await saver.release(thread: thread, runID: runID)
            throw error
        }
    }

    /// Extends the lease while a long step runs. A lost lease is recorded, so the run stops
    /// at its next checkpoint instead of running on beside the thread's new holder; other
    /// errors (a database hiccup) are left for the next write to meet.
    func renew() async {
        let version: Int64? = state.withLock { state in
            state.draining != nil || state.failure != nil || !state.claimed || state.finished ? nil : state.version
        }
        guard let version else { return }
        do {
            try await saver.put([], thread: thread, runID: runID, expectedVersion: version, leaseUntil: leaseUntil)
        } catch let conflict as CheckpointConflict {
            state.withLock { state in
                // A write that landed meanwhile moved the version; only a still-current lost lease counts.
                if state.version == version, state.failure == nil { state.failure = conflict }
            }
        } catch {}
    }

    private func startDraining() {
        state.withLock { state in
            guard state.draining == nil, state.queue.count > state.held, state.failure == nil, !state.finished else { return }
            state.draining = Task { await self.drain() }
        }
    }

    private func drain() async {
        while true {
            let next: (batch: [CheckpointRecord], version: Int64, claimed: Bool)? = state.withLock { state in
                let ready = state.queue.count - state.held
                guard ready > 0, state.failure == nil else {
                    state.draining = nil
                    return nil
                }
                defer { state.queue.removeFirst(ready) }
                return (Array(state.queue.prefix(ready)), state.version, state.claimed)
            }
            guard let next else { return }
            do {
                if next.claimed {
                    try await saver.put(next.batch, thread: thread, runID: runID, expectedVersion: next.version, leaseUntil: leaseUntil)
                } else {
                    try await saver.create(next.batch, thread: thread, runID: runID, now: now(), leaseUntil: leaseUntil)
                }
                state.withLock {
                    $0.version = next.batch[next.batch.count - 1].id
                    $0.claimed = true
                }
            } catch {
                state.withLock { $0.failure = error }
            }
        }
    }
}

extension Duration {
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
