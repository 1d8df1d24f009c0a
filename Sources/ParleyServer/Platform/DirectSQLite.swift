import FluentKit
import FluentSQL
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO
import VaporCSQLite

/// A SQLite connection of Parley's own, on the same SQLite library sqlite-nio links (its
/// vendored copy, so the process holds one SQLite and one set of file locks).
///
/// Written by hand because sqlite-nio has no hook for either thing this does differently:
/// - a statement is prepared once (`SQLITE_PREPARE_PERSISTENT`) and kept, keyed by its SQL
///   text, instead of prepared and finalized for every execution;
/// - a statement runs on the caller's thread, under a lock, and hands its rows over there,
///   instead of being sent to a thread pool with each row and its completion sent back
///   through an event loop (two to three thread switches a statement, which dominated the
///   profiles).
///
/// Two roles use it:
/// - the write gate's connection: a group commit's batch, whose statements run one after
///   another on the committing task while the batch holds SQLite's write lock, so they never
///   wait on another connection. The one statement that can wait, `BEGIN IMMEDIATE` (for a
///   writer in another process, such as a `parley` command), runs on the thread pool
///   (`begin()`), so a wait never holds a thread of Swift's cooperative pool;
/// - the read-only connections of `SQLiteReaders`, each used by one thread of their pool.
///
/// The file's settings (WAL, `synchronous = NORMAL`, busy timeout, foreign keys) are those
/// every pool connection gets.
final class DirectSQLiteConnection: @unchecked Sendable {
    /// Statements kept at most; past this the least recently used one is finalized. Texts
    /// that vary (a list's length, or values written into the text, as AgentGraph's checkpoint
    /// inserts do) would otherwise grow the cache without bound; this way they pass through it
    /// without pushing out the statements in steady use.
    let cacheLimit: Int

    let path: String
    let logger: Logger
    private let threadPool: NIOThreadPool
    /// Guards everything below, and every use of `handle`.
    private let lock = NIOLock()
    private var handle: OpaquePointer?
    private var statements: [String: CachedStatement] = [:]
    private var closed = false
    private var prepares = 0
    /// Under a lock of its own: a `begin` waiting on the thread pool holds `lock` meanwhile.
    private let lockWaits = NIOLockedValueBox(0)
    /// Counts executions; each kept statement notes when it was last used.
    private var clock: UInt64 = 0

    private struct CachedStatement {
        let handle: OpaquePointer
        let columns: DirectSQLiteColumns
        /// How many values it takes (`?`s).
        var parameters: Int { Int(sqlite_nio_sqlite3_bind_parameter_count(handle)) }
        /// How often SQLite had prepared it again when `columns` were read.
        var reprepared: Int32 = 0
        var lastUsed: UInt64 = 0
    }

    /// Opened for reading only: writes fail instead of waiting for the write lock.
    let readOnly: Bool
    /// Told the WAL's length after each commit, in place of SQLite's own automatic checkpoint.
    private let walHook: WALHook?

    /// - Parameter walHook: given, the connection never checkpoints the WAL itself after a commit
    ///   (`wal_autocheckpoint`); the hook learns the WAL's length instead (`WALCheckpointer`).
    init(path: String, threadPool: NIOThreadPool, logger: Logger, readOnly: Bool = false, cacheLimit: Int = 256,
         walHook: WALHook? = nil) {
        self.cacheLimit = max(1, cacheLimit)
        self.path = path
        self.threadPool = threadPool
        self.logger = logger
        self.readOnly = readOnly
        self.walHook = walHook
    }

    deinit { closeLocked() }

    /// `BEGIN IMMEDIATE`. Tried first on the calling thread without waiting: in a serving
    /// process every write goes through this connection, so the write lock is nearly always
    /// free, and a hop to the thread pool and back costs two thread switches a transaction.
    /// When another connection holds the lock (a `parley` command in another process), it is
    /// waited for on the thread pool, up to the busy timeout, so a wait never holds a thread of
    /// Swift's cooperative pool.
    func begin(on eventLoop: any EventLoop, logger: Logger) async throws {
        DirectSQLite.log("BEGIN IMMEDIATE", to: logger)
        do {
            if try beginWithoutWaiting() { return }
        } catch let error as DirectSQLiteError where error.code & 0xFF == SQLITE_BUSY {
            // Held elsewhere: wait for it off the cooperative pool.
            lockWaits.withLockedValue { $0 += 1 }
        }
        try await threadPool.runIfActive(eventLoop: eventLoop) {
            _ = try self.execute("BEGIN IMMEDIATE", [])
        }.get()
    }

    /// `BEGIN IMMEDIATE` with the busy handler off for this one statement: busy at once.
    /// False, without trying, when the connection is not open yet: the first open (which may
    /// wait for the file) happens on the thread pool.
    private func beginWithoutWaiting() throws -> Bool {
        try lock.withLock {
            guard let db = handle else { return false }
            sqlite_nio_sqlite3_busy_timeout(db, 0)
            defer { sqlite_nio_sqlite3_busy_timeout(db, Self.busyTimeoutMilliseconds) }
            let code = sqlite_nio_sqlite3_exec(db, "BEGIN IMMEDIATE", nil, nil, nil)
            guard code == SQLITE_OK else { throw DirectSQLiteError(code: code, db: db) }
            return true
        }
    }

    /// As `DatabaseSetup.sqlitePragmas` sets it.
    static let busyTimeoutMilliseconds: Int32 = 10_000

    /// Bound values, in bytes of text and blobs, a kept statement may hold on to after it ran.
    static let keptBindingBytes = 64 * 1024

    /// Runs one statement with `binds` on this thread and returns its rows. The rows are
    /// handed over after the lock is released, so whatever the caller does with them may run
    /// statements on this connection again.
    func execute(_ sql: String, _ binds: [SQLiteData]) throws -> [DirectSQLiteRow] {
        try lock.withLock {
            let db = try openLocked()
            let statement = try preparedLocked(sql, on: db)
            let handle = statement.handle
            // The last execution's values stay bound and are overwritten here: clearing them
            // would expire every statement whose plan SQLite lets a bound value shape (a
            // `LIMIT ?`, an equality with 0 or 1), and `step` would then compile it again
            // each time (4 % of an assistant run's CPU went to that). Only a call with fewer
            // values than parameters clears them first, so the rest are NULL as before; and
            // large values (SQLite's copies) are not kept past the execution.
            var bytes = 0
            defer {
                sqlite_nio_sqlite3_reset(handle)
                if bytes > Self.keptBindingBytes { sqlite_nio_sqlite3_clear_bindings(handle) }
            }
            if binds.count < statement.parameters { sqlite_nio_sqlite3_clear_bindings(handle) }
            for (index, bind) in binds.enumerated() {
                switch bind {
                case .text(let text): bytes += text.utf8.count
                case .blob(let blob): bytes += blob.readableBytes
                default: break
                }
                try check(Self.bind(bind, at: Int32(index + 1), to: handle), on: db)
            }
            var columns = statement.columns
            var rows: [DirectSQLiteRow] = []
            while true {
                let code = sqlite_nio_sqlite3_step(handle)
                if code == SQLITE_DONE { return rows }
                guard code == SQLITE_ROW else { throw DirectSQLiteError(code: code, db: db) }
                if rows.isEmpty {
                    // SQLite prepares a kept statement again after a schema change (another
                    // process's migration), and a `SELECT *` may then have other columns.
                    let reprepared = Self.reprepareCount(handle)
                    if reprepared != statement.reprepared {
                        columns = Self.columns(of: handle)
                        statements[sql] = CachedStatement(handle: handle, columns: columns, reprepared: reprepared,
                                                          lastUsed: statement.lastUsed)
                    }
                }
                rows.append(DirectSQLiteRow(columns: columns, values: try Self.values(of: handle, count: columns.names.count)))
            }
        }
    }

    /// A passive checkpoint: copies what it can of the WAL into the database file without
    /// waiting for readers or the writer. Returns the WAL's length and how many of its frames
    /// are now in the file.
    func checkpoint() throws -> (walFrames: Int, checkpointed: Int) {
        try lock.withLock {
            let db = try openLocked()
            var log: Int32 = 0
            var done: Int32 = 0
            let code = sqlite_nio_sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_PASSIVE, &log, &done)
            guard code == SQLITE_OK else { throw DirectSQLiteError(code: code, db: db) }
            return (Int(log), Int(done))
        }
    }

    /// How many `begin`s found the write lock held by another connection and waited for it.
    var beginsThatWaited: Int { lockWaits.withLockedValue { $0 } }

    /// How many statements were prepared (not found kept) since the connection was made.
    var statementsPrepared: Int { lock.withLock { prepares } }

    /// How often SQLite compiled the kept statement `sql` again before running it (nil when
    /// it is not kept).
    func recompilations(of sql: String) -> Int? {
        lock.withLock { statements[sql].map { Int(Self.reprepareCount($0.handle)) } }
    }

    /// Finalizes the kept statements and closes the connection; later use fails.
    func close() {
        lock.withLock {
            closed = true
            closeLocked()
        }
    }

    private func closeLocked() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement.handle) }
        statements = [:]
        if let handle { sqlite_nio_sqlite3_close_v2(handle) }
        handle = nil
    }

    private func openLocked() throws -> OpaquePointer {
        if let handle { return handle }
        guard !closed else { throw DirectSQLiteError(code: SQLITE_MISUSE, message: "the connection is closed") }
        var db: OpaquePointer?
        let access = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE
        let flags = access | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_URI | SQLITE_OPEN_EXRESCODE
        let code = sqlite_nio_sqlite3_open_v2(path, &db, flags, nil)
        guard code == SQLITE_OK, let db else {
            let error = DirectSQLiteError(code: code, message: "cannot open the database file")
            if let db { sqlite_nio_sqlite3_close_v2(db) }
            throw error
        }
        // A reader needs only the busy timeout (WAL is the file's, kept by the writers).
        for pragma in readOnly ? ["busy_timeout = \(Self.busyTimeoutMilliseconds)"] : DatabaseSetup.sqlitePragmas {
            let code = sqlite_nio_sqlite3_exec(db, "PRAGMA \(pragma)", nil, nil, nil)
            guard code == SQLITE_OK else {
                let error = DirectSQLiteError(code: code, db: db)
                sqlite_nio_sqlite3_close_v2(db)
                throw error
            }
        }
        if let walHook {
            // Replaces the automatic checkpoint (SQLite's `wal_autocheckpoint` is this same hook).
            sqlite_nio_sqlite3_wal_hook(db, { context, db, name, frames in
                guard let context, Unmanaged<WALHook>.fromOpaque(context).takeUnretainedValue().committed(Int(frames)) else {
                    return SQLITE_OK
                }
                // What SQLite's own hook does in every commit past its threshold. A checkpoint
                // that finds another running returns at once (busy) and is tried at the next commit.
                _ = sqlite_nio_sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
                return SQLITE_OK
            }, Unmanaged.passUnretained(walHook).toOpaque())
        }
        handle = db
        logger.debug("SQLite connection opened", metadata: ["read_only": .stringConvertible(readOnly)])
        return db
    }

    private func preparedLocked(_ sql: String, on db: OpaquePointer) throws -> CachedStatement {
        clock += 1
        if statements[sql] != nil {
            statements[sql]!.lastUsed = clock
            return statements[sql]!
        }
        if statements.count >= cacheLimit, let oldest = statements.min(by: { $0.value.lastUsed < $1.value.lastUsed }) {
            sqlite_nio_sqlite3_finalize(oldest.value.handle)
            statements.removeValue(forKey: oldest.key)
        }
        var statement: OpaquePointer?
        let code = sqlite_nio_sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else { throw DirectSQLiteError(code: code, db: db) }
        prepares += 1
        let cached = CachedStatement(handle: statement, columns: Self.columns(of: statement), lastUsed: clock)
        statements[sql] = cached
        return cached
    }

    private static func reprepareCount(_ statement: OpaquePointer) -> Int32 {
        sqlite_nio_sqlite3_stmt_status(statement, SQLITE_STMTSTATUS_REPREPARE, 0)
    }

    private static func columns(of statement: OpaquePointer) -> DirectSQLiteColumns {
        let count = sqlite_nio_sqlite3_column_count(statement)
        return DirectSQLiteColumns(names: (0..<count).map { sqlite_nio_sqlite3_column_name(statement, $0).map { String(cString: $0) } ?? "" })
    }

    private func check(_ code: Int32, on db: OpaquePointer) throws {
        guard code == SQLITE_OK else { throw DirectSQLiteError(code: code, db: db) }
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private static func bind(_ value: SQLiteData, at index: Int32, to statement: OpaquePointer) -> Int32 {
        switch value {
        case .integer(let value):
            sqlite_nio_sqlite3_bind_int64(statement, index, Int64(value))
        case .float(let value):
            sqlite_nio_sqlite3_bind_double(statement, index, value)
        case .text(let value):
            sqlite_nio_sqlite3_bind_text64(statement, index, value, UInt64(value.utf8.count), transient, UInt8(SQLITE_UTF8))
        case .blob(let value):
            value.withUnsafeReadableBytes {
                sqlite_nio_sqlite3_bind_blob64(statement, index, $0.baseAddress, UInt64($0.count), transient)
            }
        case .null:
            sqlite_nio_sqlite3_bind_null(statement, index)
        }
    }

    /// The current row's values, as sqlite-nio reads them (so decoding is the same).
    private static func values(of statement: OpaquePointer, count: Int) throws -> [SQLiteData] {
        try (0..<Int32(count)).map { column in
            switch sqlite_nio_sqlite3_column_type(statement, column) {
            case SQLITE_INTEGER:
                return .integer(Int(sqlite_nio_sqlite3_column_int64(statement, column)))
            case SQLITE_FLOAT:
                return .float(sqlite_nio_sqlite3_column_double(statement, column))
            case SQLITE_TEXT:
                guard let text = sqlite_nio_sqlite3_column_text(statement, column) else {
                    throw DirectSQLiteError(code: SQLITE_NOMEM, message: "no text for a text column")
                }
                // As sqlite-nio reads text (up to a NUL), so a row reads the same on any connection.
                return .text(String(cString: text))
            case SQLITE_BLOB:
                let length = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
                var buffer = ByteBufferAllocator().buffer(capacity: length)
                if let bytes = sqlite_nio_sqlite3_column_blob(statement, column) {
                    buffer.writeBytes(UnsafeRawBufferPointer(start: bytes, count: length))
                }
                return .blob(buffer)
            default:
                return .null
            }
        }
    }
}

/// A statement's column names, shared by every row it returns.
final class DirectSQLiteColumns: Sendable {
    let names: [String]
    let index: [String: Int]

    init(names: [String]) {
        self.names = names
        self.index = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// One row from the write connection, decoded as sqlite-kit decodes its rows.
struct DirectSQLiteRow: SQLRow {
    let columns: DirectSQLiteColumns
    let values: [SQLiteData]
    static let decoder = SQLiteDataDecoder()

    var allColumns: [String] { columns.names }

    func contains(column: String) -> Bool { columns.index[column] != nil }

    func decodeNil(column: String) throws -> Bool {
        guard let index = columns.index[column] else { return true }
        return values[index] == .null
    }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard let index = columns.index[column] else {
            throw DecodingError.keyNotFound(DirectSQLiteColumnKey(stringValue: column),
                                            .init(codingPath: [], debugDescription: "no column \(column) in the row"))
        }
        let value = values[index]
        if let direct = Self.direct(value, as: D.self) { return direct }
        return try Self.decoder.decode(D.self, from: value)
    }

    /// The values rows hold most, converted without sqlite-kit's decoder, which casts to each
    /// type dynamically and decodes UUIDs and optionals through Codable (a UUID then through
    /// Foundation's parser, `sscanf` on Linux): a row's ids were a good part of the cost of
    /// reading it. The results are the decoder's; any other value or type goes to it.
    private static func direct<D>(_ value: SQLiteData, as _: D.Type) -> D? {
        // `D` is exactly `T` (or `T?`) where these are called: the casts change no bits.
        func exactly<T>(_ converted: T?) -> D? { converted.map { unsafeBitCast($0, to: D.self) } }
        func optional<T>(_ convert: (SQLiteData) -> T?) -> D? {
            if case .null = value { return unsafeBitCast(T?.none, to: D.self) }
            return convert(value).map { unsafeBitCast(T?.some($0), to: D.self) }
        }
        if D.self == UUID.self { return exactly(uuid(value)) }
        if D.self == UUID?.self { return optional(uuid) }
        if D.self == String.self { return exactly(text(value)) }
        if D.self == String?.self { return optional(text) }
        if D.self == Int.self { return exactly(integer(value)) }
        if D.self == Int?.self { return optional(integer) }
        if D.self == Date?.self { return optional(Date.init(sqliteData:)) }
        if D.self == Date.self { return exactly(Date(sqliteData: value)) }
        if D.self == Bool.self { return exactly(Bool(sqliteData: value)) }
        if D.self == Bool?.self { return optional(Bool.init(sqliteData:)) }
        return nil
    }

    private static func uuid(_ value: SQLiteData) -> UUID? {
        guard case .text(let text) = value else { return nil }
        return UUID(wire: text)
    }

    private static func text(_ value: SQLiteData) -> String? {
        guard case .text(let text) = value else { return nil }
        return text
    }

    private static func integer(_ value: SQLiteData) -> Int? {
        guard case .integer(let number) = value else { return nil }
        return number
    }
}

private struct DirectSQLiteColumnKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// An error SQLite returned on the write connection, as Fluent's callers classify errors.
struct DirectSQLiteError: Error, DatabaseError, CustomStringConvertible {
    /// SQLite's extended result code.
    let code: Int32
    let message: String

    init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    init(code: Int32, db: OpaquePointer) {
        self.init(code: code, message: sqlite_nio_sqlite3_errmsg(db).map { String(cString: $0) } ?? "unknown")
    }

    var description: String { "SQLite error \(code): \(message)" }
    var isConstraintFailure: Bool { code & 0xFF == SQLITE_CONSTRAINT }
    // As fluent-sqlite-driver classifies sqlite-nio's errors.
    var isSyntaxError: Bool { code & 0xFF == SQLITE_ERROR || code & 0xFF == SQLITE_SCHEMA }
    var isConnectionClosed: Bool { code & 0xFF == SQLITE_MISUSE || code & 0xFF == SQLITE_CANTOPEN }
}

/// The write connection as Fluent and SQLKit see it, inside a transaction the write gate
/// began. Statements run at once on the calling thread; nested transactions are the
/// enclosing one (as in Fluent's own drivers).
struct DirectSQLiteDatabase: Database, SQLDatabase {
    let writer: DirectSQLiteConnection
    let context: DatabaseContext

    var inTransaction: Bool { true }
    var dialect: any SQLDialect { SQLiteDialect() }
    var queryLogLevel: Logger.Level? { .debug }
    var logger: Logger { context.logger }
    var eventLoop: any EventLoop { context.eventLoop }

    // SQLDatabase

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try run(query, onRow)
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        eventLoop.makeCompletedFuture { try run(query, onRow) }
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }

    private func run(_ query: any SQLExpression, _ onRow: (any SQLRow) -> Void) throws {
        let (sql, binds) = serialize(query)
        DirectSQLite.log(sql, to: logger)
        for row in try writer.execute(sql, try DirectSQLite.encode(binds)) { onRow(row) }
    }

    // Database

    func execute(query: DatabaseQuery, onOutput: @escaping @Sendable (any DatabaseOutput) -> Void) -> EventLoopFuture<Void> {
        execute(sql: DirectSQLite.sql(for: query)) { onOutput(DirectSQLiteOutput(row: $0, schema: nil)) }
    }

    func execute(schema: DatabaseSchema) -> EventLoopFuture<Void> {
        execute(sql: SQLSchemaConverter(delegate: DirectSQLiteConverterDelegate()).convert(schema)) { _ in }
    }

    func execute(enum: DatabaseEnum) -> EventLoopFuture<Void> {
        eventLoop.makeSucceededVoidFuture()
    }

    func transaction<T>(_ closure: @escaping @Sendable (any Database) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        closure(self)
    }

    func withConnection<T>(_ closure: @escaping @Sendable (any Database) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        closure(self)
    }

    func transaction<T: Sendable>(_ closure: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        try await closure(self)
    }

    func withConnection<T: Sendable>(_ closure: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        try await closure(self)
    }
}

/// What Parley's own connections share in how they speak to Fluent and SQLKit.
enum DirectSQLite {
    static let encoder = SQLiteDataEncoder()

    /// Binds in SQLite's types, as sqlite-kit encodes them.
    static func encode(_ binds: [any Encodable & Sendable]) throws -> [SQLiteData] {
        // A UUID as `uuidString` writes it (sqlite-kit's encoder's text), without `snprintf`.
        try binds.map { bind in
            if let id = bind as? UUID { return .text(id.stored) }
            return try encoder.encode(bind)
        }
    }

    /// Logs a statement as sqlite-kit does, at debug level, but only its text: binds can hold
    /// secrets (password hashes, token digests).
    static func log(_ sql: String, to logger: Logger) {
        if logger.logLevel <= .debug { logger.debug("Executing query", metadata: ["sql": .string(sql)]) }
    }

    /// A Fluent query as SQL, as fluent-sqlite-driver writes it: a create returns the new row's
    /// id (an empty custom id key is Fluent's signal for a composite id, which returns nothing).
    static func sql(for query: DatabaseQuery) -> any SQLExpression {
        let converted = SQLQueryConverter(delegate: DirectSQLiteConverterDelegate()).convert(query)
        guard case .create = query.action, query.customIDKey != .some(.string("")) else { return converted }
        return SQLList([converted, SQLReturning(.init((query.customIDKey ?? .id).description))], separator: SQLRaw(" "))
    }
}

/// SQLite's column types for Fluent's schema types, as fluent-sqlite-driver maps them (its
/// delegate is internal to it).
struct DirectSQLiteConverterDelegate: SQLConverterDelegate {
    func customDataType(_ dataType: DatabaseSchema.DataType) -> (any SQLExpression)? {
        switch dataType {
        case .string: SQLRaw("TEXT")
        case .datetime: SQLRaw("REAL")
        case .int64: SQLRaw("INTEGER")
        case .enum: SQLRaw("TEXT")
        default: nil
        }
    }
}

/// A row as Fluent's model decoding reads it, with the schema prefix joined queries use (as
/// fluent-sqlite-driver's own, which is internal to it).
struct DirectSQLiteOutput: DatabaseOutput {
    let row: any SQLRow
    let schema: String?

    var description: String { String(describing: row) }

    private func column(_ key: FieldKey) -> String {
        (schema.map { .prefix(.prefix(.string($0), "_"), key) } ?? key).description
    }

    func schema(_ schema: String) -> any DatabaseOutput { DirectSQLiteOutput(row: row, schema: schema) }
    func contains(_ key: FieldKey) -> Bool { row.contains(column: column(key)) }
    func decodeNil(_ key: FieldKey) throws -> Bool { try row.decodeNil(column: column(key)) }
    func decode<T: Decodable>(_ key: FieldKey, as type: T.Type) throws -> T { try row.decode(column: column(key), as: T.self) }
}
