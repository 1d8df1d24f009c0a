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
/// `.versionMismatch` if the version moved or the lease was taken), and `release`s it.
public protocol CheckpointSaver: Sendable {
    /// Takes the thread's lease until `leaseUntil`; returns its version (the last checkpoint
    /// id, 0 for a new thread).
    func claim(thread: String, runID: String, now: Date, leaseUntil: Date) async throws -> Int64
    /// Stores checkpoints if the thread's version is still `expectedVersion` and the lease is
    /// this run's; sets the version to the last record's id and extends the lease. An empty
    /// list only extends the lease.
    func put(_ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64, leaseUntil: Date) async throws
    func release(thread: String, runID: String) async throws
    /// A namespace's checkpoints, oldest first.
    func records(thread: String, namespace: String) async throws -> [CheckpointRecord]
    /// Deletes checkpoints and stores snapshots on others, in one transaction.
    func prune(thread: String, namespace: String, deleting: [Int64], snapshots: [Int64: Data]) async throws
    func deleteThread(_ thread: String) async throws
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
}

/// Everything but the state: the step's writes, the tasks to run next, and for a step that
/// stopped part-way, what is needed to finish it without redoing work.
struct CheckpointBody<S: GraphState>: Codable, Sendable {
    var writes: [EncodedWrite<S>] = []
    var next: [TaskRecord] = []
    var pending: [PendingRecord<S>]?
    var interrupts: [Interrupt]?
    var resumes: [String: [JSONValue]]?
    var taskResults: [String: [String: JSONValue]]?
    var error: String?

    enum CodingKeys: String, CodingKey {
        case writes = "w", next = "x", pending = "p", interrupts = "i", resumes = "r", taskResults = "t", error = "e"
    }
}

// MARK: - Writer

/// How eagerly checkpoints reach the checkpointer.
public enum Durability: Sendable {
    /// Each step's checkpoint is stored before the next step starts.
    case sync
    /// Checkpoints are stored in the background, in batches, while later steps run; the run
    /// waits for all of them before it returns, interrupts or fails. A crash loses at most
    /// the steps not yet stored, and a resume continues from the last stored one.
    case async
    /// Checkpoints are stored when the run returns, interrupts or fails.
    case exit
}

/// Stores one run's checkpoints (its subgraphs' too) in order, batching those that queue up
/// while a write is in flight.
actor CheckpointWriter {
    let saver: any CheckpointSaver
    let thread: String
    let runID: String
    let leaseDuration: Duration
    let now: @Sendable () -> Date
    private var nextID: Int64
    private var version: Int64
    private var queue: [CheckpointRecord] = []
    private var draining: Task<Void, Never>?
    private var failure: (any Error)?

    init(saver: any CheckpointSaver, thread: String, runID: String, version: Int64, leaseDuration: Duration, now: @escaping @Sendable () -> Date) {
        self.saver = saver
        self.thread = thread
        self.runID = runID
        self.version = version
        self.nextID = version + 1
        self.leaseDuration = leaseDuration
        self.now = now
    }

    var leaseUntil: Date { now().addingTimeInterval(leaseDuration.seconds) }

    /// Queues a checkpoint, giving it the next id.
    func append(_ record: CheckpointRecord, durability: Durability) async throws -> Int64 {
        if let failure { throw failure }
        var record = record
        record.id = nextID
        nextID += 1
        queue.append(record)
        switch durability {
        case .sync:
            try await flush()
        case .async:
            startDraining()
        case .exit:
            break
        }
        return record.id
    }

    /// Waits until every queued checkpoint is stored.
    func flush() async throws {
        startDraining()
        while let draining {
            await draining.value
        }
        if let failure { throw failure }
    }

    /// Extends the lease while a long step runs.
    func renew() async throws {
        if draining != nil || failure != nil { return }
        try await saver.put([], thread: thread, runID: runID, expectedVersion: version, leaseUntil: leaseUntil)
    }

    private func startDraining() {
        guard draining == nil, !queue.isEmpty, failure == nil else { return }
        draining = Task { await self.drain() }
    }

    private func drain() async {
        while !queue.isEmpty, failure == nil {
            let batch = queue
            queue = []
            do {
                try await saver.put(batch, thread: thread, runID: runID, expectedVersion: version, leaseUntil: leaseUntil)
                version = batch[batch.count - 1].id
            } catch {
                failure = error
            }
        }
        draining = nil
    }
}

extension Duration {
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
