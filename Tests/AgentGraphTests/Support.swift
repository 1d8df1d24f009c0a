import AgentGraph
import AgentGraphSQL
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLiteKit
import SQLKit
import Synchronization
import Testing

// MARK: - States used by the tests

struct Counter: GraphState {
    var count = 0
    var log: [String] = []
    var total = 0
    var note: String?

    static let schema: StateSchema<Counter> = [
        .field("count", \.count),
        .field("log", \.log, .append),
        .field("total", \.total, .sum),
        .field("note", \.note),
    ]
}

struct ChatMessage: Codable, Sendable, Identifiable, Equatable {
    var id: String
    var role: String
    var text: String
}

struct Chat: GraphState {
    var messages: [ChatMessage] = []
    var turns = 0

    static let schema: StateSchema<Chat> = [
        .field("messages", \.messages, .mergeByID()),
        .field("turns", \.turns, .sum),
    ]
}

// MARK: - Checkpointers under test

enum SaverKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory, sqlite, postgres

    var testDescription: String { rawValue }

    /// Memory and an SQLite file always; PostgreSQL when `PARLEY_TEST_DATABASE_URL` is set.
    static var available: [SaverKind] {
        TestDatabase.postgresURL == nil ? [.memory, .sqlite] : [.memory, .sqlite, .postgres]
    }

    static var sql: [SaverKind] { available.filter { $0 != .memory } }
}

/// Opens a real database for one test: an SQLite file in a fresh directory, or a PostgreSQL
/// connection with tables under a prefix of the test's own.
final class TestDatabase: Sendable {
    static var postgresURL: String? {
        ProcessInfo.processInfo.environment["PARLEY_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    let sql: any SQLDatabase
    let prefix: String
    let path: String?
    private let close: @Sendable () async throws -> Void

    private init(sql: any SQLDatabase, prefix: String, path: String?, close: @escaping @Sendable () async throws -> Void) {
        self.sql = sql
        self.prefix = prefix
        self.path = path
        self.close = close
    }

    static func open(_ kind: SaverKind, path existing: String? = nil) async throws -> TestDatabase {
        let prefix = "ag\(UInt32.random(in: 0...UInt32.max))_"
        switch kind {
        case .memory, .sqlite:
            let path = existing ?? FileManager.default.temporaryDirectory
                .appendingPathComponent("agentgraph-\(UUID().uuidString).sqlite").path
            let connection = try await SQLiteConnection.open(storage: .file(path: path))
            _ = try await connection.query("PRAGMA journal_mode=WAL")
            _ = try await connection.query("PRAGMA busy_timeout=5000")
            return TestDatabase(sql: connection.sql(), prefix: "agentgraph_", path: path) {
                try await connection.close()
            }
        case .postgres:
            let configuration = try SQLPostgresConfiguration(url: postgresURL ?? "")
            let connection = try await PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.any(),
                configuration: configuration.coreConfiguration,
                id: 1, logger: Logger(label: "agentgraph-tests")
            ).get()
            return TestDatabase(sql: connection.sql(), prefix: prefix, path: nil) {
                try await connection.close()
            }
        }
    }

    /// Closes the connection and keeps the file, as a process that exits would.
    func disconnect() async {
        try? await close()
    }

    func shutdown() async {
        try? await close()
        if let path {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
    }
}

/// Runs `body` with a checkpointer of the given kind, and cleans up afterwards.
func withSaver<T>(_ kind: SaverKind, _ body: (any CheckpointSaver) async throws -> T) async throws -> T {
    if kind == .memory { return try await body(InMemorySaver()) }
    let database = try await TestDatabase.open(kind)
    do {
        let saver = SQLCheckpointSaver(database: database.sql, tablePrefix: database.prefix)
        try await saver.prepare()
        let result = try await body(saver)
        await database.shutdown()
        return result
    } catch {
        await database.shutdown()
        throw error
    }
}

// MARK: - Test doubles

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let current = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
    var now: Date { current.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// Counts calls, for "ran once" and "ran N times" checks.
final class Calls: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    func hit(_ name: String) { counts.withLock { $0[name, default: 0] += 1 } }
    subscript(_ name: String) -> Int { counts.withLock { $0[name, default: 0] } }
}

/// Records the delays a retry policy asks for instead of sleeping through them.
final class RecordedSleeps: Sendable {
    private let delays = Mutex<[Duration]>([])
    var all: [Duration] { delays.withLock { $0 } }
    func record(_ delay: Duration) { delays.withLock { $0.append(delay) } }
}

/// A point several tasks reach: `arrive` returns once `parties` tasks have arrived. Used to
/// prove tasks run at the same time (run one after another, they would never all arrive).
final class Rendezvous: Sendable {
    private struct State {
        var arrived = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let parties: Int
    private let state = Mutex(State())

    init(parties: Int) { self.parties = parties }

    func arrive() async {
        await withCheckedContinuation { continuation in
            let ready: [CheckedContinuation<Void, Never>]? = state.withLock { state in
                state.arrived += 1
                state.waiting.append(continuation)
                guard state.arrived == parties else { return nil }
                defer { state.waiting = [] }
                return state.waiting
            }
            ready?.forEach { $0.resume() }
        }
    }
}

func testEnvironment(clock: ManualClock = ManualClock(), sleeps: RecordedSleeps? = nil) -> RunEnvironment {
    RunEnvironment(
        now: { clock.now },
        sleep: { delay in sleeps?.record(delay) },
        random: { 0.5 }
    )
}

func config(_ thread: String? = nil, clock: ManualClock? = nil, durability: Durability = .sync) -> RunConfig {
    var config = RunConfig(threadID: thread, durability: durability)
    if let clock { config.environment = testEnvironment(clock: clock) }
    return config
}

/// A counter loop: `inc` adds one until `count` reaches `limit`, logging each visit.
func counterLoop(limit: Int, checkpointer: (any CheckpointSaver)? = nil, calls: Calls? = nil) throws -> CompiledGraph<Counter> {
    var graph = StateGraph(Counter.self)
    graph.addNode("inc") { state, _ in
        calls?.hit("inc")
        return .update(\.count, state.count + 1).and(\.log, ["inc\(state.count + 1)"])
    }
    graph.addEdge(START, "inc")
    graph.addConditionalEdges("inc", to: ["inc", END]) { state in
        state.count < limit ? ["inc"] : [.end]
    }
    return try graph.compile(checkpointer: checkpointer)
}

/// A test double around another saver: every write and read goes to `inner` unless the
/// double says otherwise. (`create` and `putAndRelease` keep `CheckpointSaver`'s defaults,
/// which go through the double's own `claim`, `put` and `release`.)
protocol ForwardingSaver: CheckpointSaver {
    var inner: any CheckpointSaver { get }
}

extension ForwardingSaver {
    func claim(thread: String, runID: String, now: Date, leaseUntil: Date) async throws -> Int64 {
        try await inner.claim(thread: thread, runID: runID, now: now, leaseUntil: leaseUntil)
    }

    func put(_ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64, leaseUntil: Date) async throws {
        try await inner.put(records, thread: thread, runID: runID, expectedVersion: expectedVersion, leaseUntil: leaseUntil)
    }

    func release(thread: String, runID: String) async throws {
        try await inner.release(thread: thread, runID: runID)
    }

    func records(thread: String, namespace: String) async throws -> [CheckpointRecord] {
        try await inner.records(thread: thread, namespace: namespace)
    }

    func prune(thread: String, namespace: String, deleting: [Int64], snapshots: [Int64: Data]) async throws {
        try await inner.prune(thread: thread, namespace: namespace, deleting: deleting, snapshots: snapshots)
    }

    func deleteThread(_ thread: String) async throws {
        try await inner.deleteThread(thread)
    }
}

/// An in-memory saver that says when a run lets go of a thread (after its last checkpoint),
/// so a test can wait for a run it cannot await.
final class ReleaseSignallingSaver: ForwardingSaver {
    let inner: any CheckpointSaver = InMemorySaver()
    let releases: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation

    init() {
        (releases, continuation) = AsyncStream<String>.makeStream()
    }

    func release(thread: String, runID: String) async throws {
        try await inner.release(thread: thread, runID: runID)
        continuation.yield(thread)
    }
}

struct TimedOut: Error {}

/// Runs `body`, failing instead of hanging if it has not finished after `seconds` (a bound on
/// failure, not a timing assertion).
func within<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimedOut() }
        return value
    }
}
