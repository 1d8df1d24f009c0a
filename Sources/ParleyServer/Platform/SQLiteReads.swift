import Dispatch
import FluentKit
import FluentSQL
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO
import VaporCSQLite

/// Reads of a SQLite file on read-only connections of Parley's own (`DirectSQLiteConnection`),
/// one per thread of a pool of their own.
///
/// A read runs on a thread of that pool, with a statement the connection keeps prepared, and
/// its rows go straight back to the waiting task: one hand-over each way. sqlite-nio's pool
/// prepares each statement afresh, sends every row to an event loop, and completes there
/// before the task resumes. Long reads (search, exports) hold a thread of this pool, never one
/// of Swift's cooperative pool or an event loop. In WAL mode a reader never waits for the
/// writer, so a thread is only ever busy with SQLite's own work.
///
/// A short read does not move at all: a statement timed at least `inlineAfter` times whose
/// moving average (the latest run weighing a quarter) is under `inlineLimit` runs on the
/// calling task's thread, on a connection kept for that, as the write connection's
/// statements do. The two thread switches of a trip through the pool cost more than such a
/// read (a point lookup takes 10-50 µs, the assistants' history read about 100) and, on an
/// idle server, wake a sleeping thread each way. A task's thread is an event loop's here, so
/// a long run (however its binds made it long: a search for a common word) lifts the average
/// far over the limit and sends the statement back to the pool until short runs bring it
/// down again (each takes a quarter off the excess: after a 5 ms run, about ten). A run
/// sends it back when it exceeds the average by more than four times the average's margin
/// under the limit (for the 100 µs history read, a run of 300 µs), so an inline run can take
/// somewhat longer than the limit, but a statement that is sometimes long cannot stay
/// inline; and there are fewer inline connections than event loops, so a slow inline read
/// holds one loop at most.
///
/// The limit was measured: before Swift's jobs ran as the generic executor on the event loops
/// (`ConcurrencyOnEventLoops`), inline reads of up to 0.1 ms raised the loaded assistants
/// benchmark's first-delta p99 from about 200 to 260-330 ms, so the limit was 40 µs with a
/// strict rule (eight short runs in a row). Since, an average under 150 µs took the idle
/// first delta from about 5.8 to 4.6 ms (the history and tool reads stay here) with the
/// loaded p99 unchanged at about 90-130 ms (docs/benchmarks.md).
final class SQLiteReaders: Sendable {
    private let connections: [DirectSQLiteConnection]
    /// Indexes of the connections no thread is using. The pool has as many threads as there are
    /// connections, so a running read always finds one.
    private let free: NIOLockedValueBox<[Int]>
    private let pool: NIOThreadPool
    /// The threads start with the first read (a command that reads nothing starts none); after
    /// `close()` none start again.
    private let state = NIOLockedValueBox((started: false, closed: false))
    /// Connections for reads run on the caller's thread, and which of them are free.
    private let inline: [DirectSQLiteConnection]
    private let freeInline: NIOLockedValueBox<[Int]>
    /// Statement text → how many of its executions were timed, and their moving average (µs).
    private let costs = NIOLockedValueBox<[String: Cost]>([:])
    private let inlineCount = NIOLockedValueBox(0)

    private struct Cost {
        var runs: Int
        var average: Double
    }

    /// A statement whose moving average is under this many microseconds runs inline.
    static let inlineLimit = 150.0
    /// Runs timed before a statement may run inline.
    static let inlineAfter = 8
    /// The weight of the latest run in the moving average.
    static let latestWeight = 0.25
    /// Statement texts whose costs are kept (texts with values written into them would grow
    /// the map without bound: it starts over past this).
    static let costLimit = 2_048

    /// The average under which a statement runs inline (`inlineLimit` unless a test sets another).
    private let shortRun: Double

    init(path: String, threads: Int, inlineConnections: Int = max(1, System.coreCount / 2), inlineLimit: Double = SQLiteReaders.inlineLimit,
         logger: Logger) {
        shortRun = inlineLimit
        let threads = max(1, threads)
        pool = NIOThreadPool(numberOfThreads: threads)
        connections = (0..<threads).map { _ in DirectSQLiteConnection(path: path, threadPool: .singleton, logger: logger, readOnly: true) }
        free = NIOLockedValueBox(Array(0..<threads))
        inline = (0..<max(0, inlineConnections)).map { _ in
            DirectSQLiteConnection(path: path, threadPool: .singleton, logger: logger, readOnly: true)
        }
        freeInline = NIOLockedValueBox(Array(inline.indices))
    }

    /// Runs one read-only statement and returns its rows: here when it has been short lately,
    /// otherwise on the pool.
    func read(_ sql: String, _ binds: [SQLiteData]) async throws -> [DirectSQLiteRow] {
        if costs.withLockedValue({ $0[sql].map { $0.runs >= Self.inlineAfter && $0.average < shortRun } ?? false }),
           !state.withLockedValue({ $0.closed }),
           let index = freeInline.withLockedValue({ $0.popLast() }) {
            defer { freeInline.withLockedValue { $0.append(index) } }
            inlineCount.withLockedValue { $0 += 1 }
            return try timed(sql, binds, on: inline[index])
        }
        return try await withCheckedThrowingContinuation { continuation in
            submit(sql, binds) { continuation.resume(with: $0) }
        }
    }

    /// How many reads ran on the caller's thread.
    var inlineReads: Int { inlineCount.withLockedValue { $0 } }

    /// Runs `sql` on `connection` and adds how long it took to the statement's average.
    private func timed(_ sql: String, _ binds: [SQLiteData], on connection: DirectSQLiteConnection) throws -> [DirectSQLiteRow] {
        let start = DispatchTime.now().uptimeNanoseconds
        let rows = try connection.execute(sql, binds)
        let took = Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000
        costs.withLockedValue { costs in
            if costs.count >= Self.costLimit, costs[sql] == nil { costs.removeAll() }
            if let cost = costs[sql] {
                costs[sql] = Cost(runs: cost.runs + 1, average: cost.average + Self.latestWeight * (took - cost.average))
            } else {
                costs[sql] = Cost(runs: 1, average: took)
            }
        }
        return rows
    }

    /// Runs one read-only statement and completes `promise` with its rows.
    func read(_ sql: String, _ binds: [SQLiteData], promise: EventLoopPromise<[DirectSQLiteRow]>) {
        submit(sql, binds) { promise.completeWith($0) }
    }

    private func submit(_ sql: String, _ binds: [SQLiteData], _ done: @escaping @Sendable (Result<[DirectSQLiteRow], any Error>) -> Void) {
        let open = state.withLockedValue { state -> Bool in
            guard !state.closed else { return false }
            if !state.started { pool.start() }
            state.started = true
            return true
        }
        guard open else {
            return done(.failure(DirectSQLiteError(code: SQLITE_MISUSE, message: "the read connections are closed")))
        }
        pool.submit { [self] state in
            guard case .active = state else {
                return done(.failure(DirectSQLiteError(code: SQLITE_MISUSE, message: "the read connections are closed")))
            }
            guard let index = free.withLockedValue({ $0.popLast() }) else {
                return done(.failure(DirectSQLiteError(code: SQLITE_MISUSE, message: "no free read connection")))
            }
            defer { free.withLockedValue { $0.append(index) } }
            done(Result { try timed(sql, binds, on: connections[index]) })
        }
    }

    /// Statements the read connections prepared so far (each keeps what it prepared).
    var statementsPrepared: Int { (connections + inline).reduce(0) { $0 + $1.statementsPrepared } }

    /// Marks the readers closed; whether their threads had started.
    private func closing() -> Bool {
        state.withLockedValue { state in
            defer { state.closed = true }
            return state.started && !state.closed
        }
    }

    /// Stops the threads and closes the connections.
    func close() async {
        if closing() { try? await pool.shutdownGracefully() }
        for connection in connections + inline { connection.close() }
    }

    /// `close()`, for callers that cannot wait asynchronously.
    func closeSync() {
        if closing() { try? pool.syncShutdownGracefully() }
        for connection in connections + inline { connection.close() }
    }
}

/// The application's SQLite database as Fluent and SQLKit see it: a single `SELECT` outside a
/// transaction goes to `SQLiteReaders`; everything else (writes, schema changes, transactions,
/// `withConnection`) goes to sqlite-nio's pool as before (`base`), and write transactions to
/// the write gate.
struct RoutedSQLiteDatabase: Database, SQLDatabase {
    let base: any Database
    private let sqlBase: any SQLDatabase
    let readers: SQLiteReaders

    /// `base`: one of sqlite-nio's pooled databases (an `SQLDatabase`, as Fluent's SQLite driver makes them).
    init(base: any Database & SQLDatabase, readers: SQLiteReaders) {
        self.base = base
        self.sqlBase = base
        self.readers = readers
    }

    var context: DatabaseContext { base.context }
    var inTransaction: Bool { false }
    var dialect: any SQLDialect { SQLiteDialect() }
    var queryLogLevel: Logger.Level? { .debug }
    var logger: Logger { context.logger }
    var eventLoop: any EventLoop { context.eventLoop }

    /// Whether `sql` only reads: one `SELECT` statement (a `WITH` may hide a write).
    static func isRead(_ sql: String) -> Bool {
        sql.utf8.prefix(7).map { $0 | 0x20 }.elementsEqual("select ".utf8)
    }

    // SQLDatabase

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        let (sql, binds) = serialize(query)
        guard Self.isRead(sql) else { return try await sqlBase.execute(sql: Serialized(sql: sql, binds: binds), onRow) }
        DirectSQLite.log(sql, to: logger)
        for row in try await readers.read(sql, try DirectSQLite.encode(binds)) { onRow(row) }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        let (sql, binds) = serialize(query)
        guard Self.isRead(sql) else { return sqlBase.execute(sql: Serialized(sql: sql, binds: binds), onRow) }
        DirectSQLite.log(sql, to: logger)
        let promise = eventLoop.makePromise(of: [DirectSQLiteRow].self)
        do {
            readers.read(sql, try DirectSQLite.encode(binds), promise: promise)
        } catch {
            promise.fail(error)
        }
        return promise.futureResult.map { rows in for row in rows { onRow(row) } }
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await sqlBase.withSession(closure)
    }

    /// A statement already serialized for the routing decision, handed on whole so it is not
    /// serialized a second time.
    private struct Serialized: SQLExpression {
        let sql: String
        let binds: [any Encodable & Sendable]

        func serialize(to serializer: inout SQLSerializer) {
            serializer.write(sql)
            serializer.binds += binds
        }
    }

    // Database

    func execute(query: DatabaseQuery, onOutput: @escaping @Sendable (any DatabaseOutput) -> Void) -> EventLoopFuture<Void> {
        switch query.action {
        case .read, .aggregate:
            return execute(sql: DirectSQLite.sql(for: query)) { onOutput(DirectSQLiteOutput(row: $0, schema: nil)) }
        default:
            return base.execute(query: query, onOutput: onOutput)
        }
    }

    func execute(schema: DatabaseSchema) -> EventLoopFuture<Void> {
        base.execute(schema: schema)
    }

    func execute(enum: DatabaseEnum) -> EventLoopFuture<Void> {
        base.execute(enum: `enum`)
    }

    func transaction<T>(_ closure: @escaping @Sendable (any Database) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        base.transaction(closure)
    }

    func withConnection<T>(_ closure: @escaping @Sendable (any Database) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        base.withConnection(closure)
    }

    func transaction<T: Sendable>(_ closure: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        try await base.transaction(closure)
    }

    func withConnection<T: Sendable>(_ closure: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        try await base.withConnection(closure)
    }
}

/// Fluent's SQLite configuration with its databases wrapped in `RoutedSQLiteDatabase`.
struct RoutedSQLiteConfiguration: DatabaseConfiguration {
    var base: any DatabaseConfiguration
    let readers: SQLiteReaders

    var middleware: [any AnyModelMiddleware] {
        get { base.middleware }
        set { base.middleware = newValue }
    }

    func makeDriver(for databases: Databases) -> any DatabaseDriver {
        Driver(base: base.makeDriver(for: databases), readers: readers)
    }

    struct Driver: DatabaseDriver {
        let base: any DatabaseDriver
        let readers: SQLiteReaders

        func makeDatabase(with context: DatabaseContext) -> any Database {
            let database = base.makeDatabase(with: context)
            guard let sql = database as? any Database & SQLDatabase else { return database }
            return RoutedSQLiteDatabase(base: sql, readers: readers)
        }

        func shutdown() {
            base.shutdown()
            readers.closeSync()
        }

        func shutdownAsync() async {
            await base.shutdownAsync()
            await readers.close()
        }
    }
}
