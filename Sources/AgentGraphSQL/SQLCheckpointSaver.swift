import AgentGraph
import Foundation
import SQLKit

/// Runs a unit of work in a database transaction of the application's choosing: its own
/// write queue, for instance, so that checkpoint writes commit with the application's other
/// writes and on its connection, rather than on another connection that competes with them
/// for SQLite's write lock.
public protocol SQLTransactionRunner: Sendable {
    /// Runs `body` in a transaction on the database it is given, and commits; if `body`
    /// throws, nothing it wrote stays.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
}

/// AgentGraph checkpoints in SQL, through SQLKit: the same code on SQLite and PostgreSQL.
///
/// Tables (created by `prepare()`, prefixed by `tablePrefix`):
/// - `<prefix>threads`: one row per thread with its version (the last checkpoint id) and the
///   lease of the run that holds it;
/// - `<prefix>checkpoints`: one row per checkpoint; `body` holds the step's writes as JSON,
///   `snapshot` a full state only where a chain starts.
///
/// Writes are transactions that check the thread's version and lease, so a run that lost its
/// thread cannot overwrite another's checkpoints.
public final class SQLCheckpointSaver: CheckpointSaver {
    let database: any SQLDatabase
    let threads: String
    let checkpoints: String
    let gate: TransactionGate?
    let alongside: (@Sendable (_ db: any SQLDatabase, _ thread: String) async throws -> Void)?
    let runner: (any SQLTransactionRunner)?

    /// - Parameters:
    ///   - database: any SQLKit database. With a single SQLite connection, transactions are
    ///     serialised here, since one connection cannot hold two at once.
    ///   - tablePrefix: prepended to the table names.
    ///   - alongside: the application's own writes to make in each checkpoint's transaction
    ///     (rows that must commit with the step, such as a trace), on the transaction's `db`.
    ///   - transactions: where writes run (each a transaction); by default the saver begins and
    ///     commits its own on `database`. Reads still go to `database`.
    public init(database: any SQLDatabase, tablePrefix: String = "agentgraph_",
                alongside: (@Sendable (_ db: any SQLDatabase, _ thread: String) async throws -> Void)? = nil,
                transactions: (any SQLTransactionRunner)? = nil) {
        self.database = database
        self.threads = tablePrefix + "threads"
        self.checkpoints = tablePrefix + "checkpoints"
        self.gate = transactions == nil && database.dialect.name == "sqlite" ? TransactionGate() : nil
        self.alongside = alongside
        self.runner = transactions
    }

    /// Creates the tables and index if they do not exist.
    public func prepare() async throws {
        try await database.create(table: threads).ifNotExists()
            .column("thread_id", type: .text, .primaryKey(autoIncrement: false))
            .column("version", type: .bigint, .notNull)
            .column("run_id", type: .text)
            .column("lease_until", type: .custom(SQLRaw("DOUBLE PRECISION")), .notNull)
            .run()
        try await database.create(table: checkpoints).ifNotExists()
            .column("thread_id", type: .text, .notNull)
            .column("namespace", type: .text, .notNull)
            .column("id", type: .bigint, .notNull)
            .column("parent_id", type: .bigint)
            .column("step", type: .bigint, .notNull)
            .column("source", type: .text, .notNull)
            .column("created_at", type: .custom(SQLRaw("DOUBLE PRECISION")), .notNull)
            .column("snapshot", type: .blob)
            .column("body", type: .blob, .notNull)
            .primaryKey("thread_id", "id")
            .run()
        try await database.raw("""
            CREATE INDEX IF NOT EXISTS \(ident: checkpoints + "_namespace") ON \(ident: checkpoints) (thread_id, namespace, id)
            """).run()
    }

    public func claim(thread: String, runID: String, now: Date, leaseUntil: Date) async throws -> Int64 {
        // In the application's transaction when it runs them; otherwise through the gate: on one
        // SQLite connection a statement must not land inside another caller's open transaction
        // (and be rolled back with it).
        if let runner {
            return try await runner.transaction { db in
                try await self.claimStatement(thread: thread, runID: runID, now: now, leaseUntil: leaseUntil, on: db)
            }
        }
        return try await TransactionGate.run(gate) {
            try await self.claimStatement(thread: thread, runID: runID, now: now, leaseUntil: leaseUntil, on: self.database)
        }
    }

    private func claimStatement(thread: String, runID: String, now: Date, leaseUntil: Date, on database: any SQLDatabase) async throws -> Int64 {
        // One statement: the thread's row is created, or taken when free (no run holds it, this
        // run does, or the holder's lease ran out); when held by another live run it is left
        // alone and nothing is returned.
        let row = try await database.raw("""
            INSERT INTO \(ident: threads) AS t (thread_id, version, run_id, lease_until)
            VALUES (\(bind: thread), 0, \(bind: runID), \(bind: leaseUntil.timeIntervalSince1970))
            ON CONFLICT (thread_id) DO UPDATE SET run_id = excluded.run_id, lease_until = excluded.lease_until
            WHERE t.run_id IS NULL OR t.run_id = excluded.run_id OR t.lease_until <= \(bind: now.timeIntervalSince1970)
            RETURNING version
            """).first()
        guard let row else { throw CheckpointConflict.busy }
        return try row.decode(column: "version", as: Int64.self)
    }

    public func put(
        _ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64, leaseUntil: Date
    ) async throws {
        try await store(records, thread: thread, runID: runID, expectedVersion: expectedVersion, leaseUntil: leaseUntil)
    }

    /// One transaction: the version moves (checked) and the lease is given up with it. With
    /// nothing to store, only the release (which leaves a lease another run took alone).
    public func putAndRelease(_ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64) async throws {
        guard !records.isEmpty else { return try await release(thread: thread, runID: runID) }
        try await store(records, thread: thread, runID: runID, expectedVersion: expectedVersion, leaseUntil: nil)
    }

    /// One transaction: the thread's row is made (or taken, if it has no checkpoint and no
    /// live holder) at the first records' version, and the records stored.
    public func create(_ records: [CheckpointRecord], thread: String, runID: String, now: Date, leaseUntil: Date) async throws {
        let version = records.last?.id ?? 0
        try await transaction { db in
            let row = try await db.raw("""
                INSERT INTO \(ident: self.threads) AS t (thread_id, version, run_id, lease_until)
                VALUES (\(bind: thread), \(bind: version), \(bind: runID), \(bind: leaseUntil.timeIntervalSince1970))
                ON CONFLICT (thread_id) DO UPDATE SET version = excluded.version, run_id = excluded.run_id, lease_until = excluded.lease_until
                WHERE t.version = 0 AND (t.run_id IS NULL OR t.run_id = excluded.run_id OR t.lease_until <= \(bind: now.timeIntervalSince1970))
                RETURNING version
                """).first()
            guard row != nil else { throw CheckpointConflict.busy }
            try await self.insert(records, thread: thread, on: db)
            try await self.alongside?(db, thread)
        }
    }

    /// `leaseUntil` nil: the lease is given up in the same statement.
    private func store(
        _ records: [CheckpointRecord], thread: String, runID: String, expectedVersion: Int64, leaseUntil: Date?
    ) async throws {
        let newVersion = records.last?.id ?? expectedVersion
        try await transaction { db in
            let lease: SQLQueryString = leaseUntil.map { "lease_until = \(bind: $0.timeIntervalSince1970)" } ?? "run_id = NULL, lease_until = 0"
            let row = try await db.raw("""
                UPDATE \(ident: self.threads) SET version = \(bind: newVersion), \(lease)
                WHERE thread_id = \(bind: thread) AND run_id = \(bind: runID) AND version = \(bind: expectedVersion)
                RETURNING version
                """).first()
            guard row != nil else { throw CheckpointConflict.versionMismatch }
            try await self.insert(records, thread: thread, on: db)
            try await self.alongside?(db, thread)
        }
    }

    private func insert(_ records: [CheckpointRecord], thread: String, on db: any SQLDatabase) async throws {
            // One raw statement per 100 rows. Only the bodies (and any snapshots) are bound: the
            // thread and namespace are bound once and their placeholders repeated, and the
            // numbers and the source (one of a few fixed words) are literals. Binding all nine
            // columns of every row cost ~18 µs a row, mostly SQLiteKit converting each value.
            for start in stride(from: 0, to: records.count, by: 100) {
                var insert: SQLQueryString = "INSERT INTO "
                insert.appendInterpolation(ident: self.checkpoints)
                insert.appendLiteral(" (thread_id, namespace, id, parent_id, step, source, created_at, snapshot, body) VALUES ")
                for (position, record) in records[start..<min(start + 100, records.count)].enumerated() {
                    if position == 0 {
                        insert.appendLiteral("(")
                        insert.appendInterpolation(bind: thread)
                        insert.appendLiteral(", ")
                        insert.appendInterpolation(bind: record.namespace)
                    } else {
                        insert.appendLiteral(", (")
                        insert.appendInterpolation(db.dialect.bindPlaceholder(at: 1))
                        insert.appendLiteral(", ")
                        if record.namespace == records[start].namespace {
                            insert.appendInterpolation(db.dialect.bindPlaceholder(at: 2))
                        } else {
                            insert.appendInterpolation(bind: record.namespace)
                        }
                    }
                    insert.appendLiteral(", ")
                    insert.appendInterpolation(literal: record.id)
                    insert.appendLiteral(", ")
                    if let parent = record.parentID {
                        insert.appendInterpolation(literal: parent)
                    } else {
                        insert.appendLiteral("NULL")
                    }
                    insert.appendLiteral(", ")
                    insert.appendInterpolation(literal: record.step)
                    insert.appendLiteral(", ")
                    if record.source.utf8.allSatisfy({ $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }) {
                        // A plain lowercase word needs no escaping (SQLKit's escaping is slow).
                        insert.appendLiteral("'\(record.source)'")
                    } else {
                        insert.appendInterpolation(bind: record.source)
                    }
                    insert.appendLiteral(", ")
                    insert.appendInterpolation(literal: record.createdAt.timeIntervalSince1970)
                    insert.appendLiteral(", ")
                    if let snapshot = record.snapshot {
                        insert.appendInterpolation(bind: snapshot)
                    } else {
                        insert.appendLiteral("NULL")
                    }
                    insert.appendLiteral(", ")
                    insert.appendInterpolation(bind: record.body)
                    insert.appendLiteral(")")
                }
                try await db.raw(insert).run()
            }
    }

    public func release(thread: String, runID: String) async throws {
        let statement: @Sendable (any SQLDatabase) async throws -> Void = { db in
            try await db.raw("""
                UPDATE \(ident: self.threads) SET run_id = NULL, lease_until = 0
                WHERE thread_id = \(bind: thread) AND run_id = \(bind: runID)
                """).run()
        }
        if let runner { return try await runner.transaction(statement) }
        try await TransactionGate.run(gate) { try await statement(self.database) }
    }

    public func records(thread: String, namespace: String) async throws -> [CheckpointRecord] {
        let rows = try await TransactionGate.run(gate) {
            try await self.database.raw("""
                SELECT id, parent_id, step, source, created_at, snapshot, body FROM \(ident: self.checkpoints)
                WHERE thread_id = \(bind: thread) AND namespace = \(bind: namespace) ORDER BY id
                """).all()
        }
        return try rows.map { row in
            CheckpointRecord(
                threadID: thread, namespace: namespace,
                id: try row.decode(column: "id", as: Int64.self),
                parentID: try row.decode(column: "parent_id", as: Int64?.self),
                step: Int(try row.decode(column: "step", as: Int64.self)),
                source: try row.decode(column: "source", as: String.self),
                createdAt: Date(timeIntervalSince1970: try row.decode(column: "created_at", as: Double.self)),
                snapshot: try row.decode(column: "snapshot", as: Data?.self),
                body: try row.decode(column: "body", as: Data.self)
            )
        }
    }

    public func prune(thread: String, namespace: String, deleting: [Int64], snapshots: [Int64: Data]) async throws {
        try await transaction { db in
            for (id, snapshot) in snapshots {
                try await db.raw("""
                    UPDATE \(ident: self.checkpoints) SET snapshot = \(bind: snapshot)
                    WHERE thread_id = \(bind: thread) AND id = \(bind: id)
                    """).run()
            }
            for start in stride(from: 0, to: deleting.count, by: 500) {
                try await db.delete(from: self.checkpoints)
                    .where("thread_id", .equal, thread)
                    .where("namespace", .equal, namespace)
                    .where("id", .in, Array(deleting[start..<min(start + 500, deleting.count)]))
                    .run()
            }
        }
    }

    public func deleteThread(_ thread: String) async throws {
        try await transaction { db in
            try await db.delete(from: self.checkpoints).where("thread_id", .equal, thread).run()
            try await db.delete(from: self.threads).where("thread_id", .equal, thread).run()
        }
    }

    /// Storage figures for a thread: rows, and bytes of body and snapshot data.
    public func usage(thread: String) async throws -> (rows: Int, bodyBytes: Int, snapshotBytes: Int) {
        let row = try await database.raw("""
            SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(body)), 0) AS body, COALESCE(SUM(LENGTH(snapshot)), 0) AS snapshot
            FROM \(ident: checkpoints) WHERE thread_id = \(bind: thread)
            """).first()
        guard let row else { return (0, 0, 0) }
        return (
            Int(try row.decode(column: "n", as: Int64.self)),
            Int(try row.decode(column: "body", as: Int64.self)),
            Int(try row.decode(column: "snapshot", as: Int64.self))
        )
    }

    func transaction(_ body: @escaping @Sendable (any SQLDatabase) async throws -> Void) async throws {
        if let runner { return try await runner.transaction(body) }
        try await TransactionGate.run(gate) {
            try await self.database.withSession { db in
                let sqlite = db.dialect.name == "sqlite"
                // IMMEDIATE takes SQLite's write lock up front, so two writers queue instead of deadlocking.
                try await db.raw(sqlite ? "BEGIN IMMEDIATE" : "BEGIN").run()
                do {
                    try await body(db)
                    try await db.raw("COMMIT").run()
                } catch {
                    try? await db.raw("ROLLBACK").run()
                    throw error
                }
            }
        }
    }
}

/// Runs one transaction at a time over a shared SQLite connection, in arrival order.
/// Hand-written: none of the listed packages offers an async FIFO lock.
actor TransactionGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    static func run<T: Sendable>(_ gate: TransactionGate?, _ body: @Sendable () async throws -> T) async throws -> T {
        guard let gate else { return try await body() }
        await gate.enter()
        do {
            let result = try await body()
            await gate.leave()
            return result
        } catch {
            await gate.leave()
            throw error
        }
    }

    private func enter() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func leave() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
