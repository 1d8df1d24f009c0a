import Fluent
import Foundation
import SQLKit
import SQLiteNIO
import Testing
import Vapor
@testable import ParleyServer

/// Parley's own SQLite write connection: what it writes reads back the same through Fluent's
/// pool, it keeps its statements, and SQLite's errors keep their meaning.
@Suite("SQLite write connection")
struct DirectSQLiteTests {
    struct Probe: Codable, Equatable {
        let id: UUID
        let name: String
        let at: Date
        let flag: Bool
        let count: Int
        let score: Double
        let note: String?
        let bytes: Data
    }

    /// Runs `body` with a writer on the test's SQLite file (nothing on PostgreSQL).
    private func withWriter(_ body: (Application, DirectSQLiteConnection, DirectSQLiteDatabase) async throws -> Void) async throws {
        try await withParley { app, context in
            guard case .sqlite(let path) = context.settings.database else { return }
            let writer = DirectSQLiteConnection(path: path, threadPool: app.threadPool, logger: app.logger)
            defer { writer.close() }
            try await body(app, writer, DirectSQLiteDatabase(writer: writer, context: app.db.context))
        }
    }

    @Test("rows it writes read back equal through Fluent's pool, and rows it reads decode as the pool's do")
    func roundTrip() async throws {
        try await withWriter { app, writer, db in
            let pool = try #require(app.db as? any SQLDatabase)
            try await pool.raw("""
                CREATE TABLE writer_probe (id BLOB PRIMARY KEY, name TEXT NOT NULL, at REAL NOT NULL, flag INTEGER NOT NULL,
                  count INTEGER NOT NULL, score REAL NOT NULL, note TEXT, bytes BLOB NOT NULL)
                """).run()
            let probes = [
                Probe(id: UUID(), name: "Zoë 🦊 \"quoted\"", at: Date(timeIntervalSince1970: 1_790_000_000.25), flag: true,
                      count: -42, score: 0.125, note: nil, bytes: Data([0, 1, 2, 255])),
                Probe(id: UUID(), name: "", at: Date(timeIntervalSince1970: 0), flag: false, count: Int.max, score: -1e300,
                      note: "a\nb", bytes: Data()),
            ]
            try await writer.begin(on: app.eventLoopGroup.any(), logger: app.logger)
            for probe in probes {
                try await db.insert(into: "writer_probe").model(probe).run()
            }
            try await db.raw("COMMIT").run()

            let viaPool = try await pool.raw("SELECT * FROM writer_probe ORDER BY count").all(decoding: Probe.self)
            let viaWriter = try await db.raw("SELECT * FROM writer_probe ORDER BY count").all(decoding: Probe.self)
            let expected = probes.sorted { $0.count < $1.count }
            #expect(viaPool == expected)
            #expect(viaWriter == expected)
        }
    }

    @Test("a statement is prepared once and kept; another text is prepared once more")
    func keepsStatements() async throws {
        try await withWriter { _, writer, db in
            for n in 1...5 {
                let query: SQLQueryString = "SELECT \(bind: n) + 1 AS n"
                let row = try await db.raw(query).first()
                #expect(try row?.decode(column: "n", as: Int.self) == n + 1)
            }
            #expect(writer.statementsPrepared == 1)
            _ = try await db.raw("SELECT \(bind: 1) AS one").first()
            _ = try await db.raw("SELECT \(bind: 2) AS one").first()
            #expect(writer.statementsPrepared == 2)
        }
    }

    @Test("a kept statement whose plan a bound value shapes is not compiled again while its values stay, unless they are large; fewer values leave the rest NULL")
    func keepsPlans() async throws {
        try await withWriter { _, writer, _ in
            // SQLite plans `LIMIT ?` with the bound value, so a new value (or cleared ones)
            // makes it compile the statement again.
            let sql = "SELECT value FROM json_each('[1,2,3]') LIMIT ?1"
            #expect(try writer.execute(sql, [.integer(2)]).count == 2)
            let first = try #require(writer.recompilations(of: sql))
            for _ in 1...4 {
                #expect(try writer.execute(sql, [.integer(2)]).count == 2)
            }
            #expect(writer.recompilations(of: sql) == first)
            #expect(try writer.execute(sql, [.integer(1)]).count == 1)
            #expect(writer.recompilations(of: sql) == first + 1)
            // A large value is not kept past its execution (clearing it makes the next run
            // compile the statement again); a small one is.
            let sized = "SELECT length(?2) AS n FROM json_each('[1,2,3]') LIMIT ?1"
            let small: [SQLiteData] = [.integer(2), .text("small")], large: [SQLiteData] = [.integer(2), .text(String(repeating: "x", count: 100_000))]
            _ = try writer.execute(sized, small)
            let settled = try #require(writer.recompilations(of: sized))
            _ = try writer.execute(sized, small)
            #expect(writer.recompilations(of: sized) == settled)
            _ = try writer.execute(sized, large)
            _ = try writer.execute(sized, large)
            #expect(writer.recompilations(of: sized) == settled + 1, "the large value was cleared after the first of the two runs")
            // A parameter not given is NULL, not the last execution's value.
            let pair = "SELECT ?1 AS a, ?2 AS b"
            _ = try writer.execute(pair, [.integer(1), .integer(2)])
            let row = try #require(try writer.execute(pair, [.integer(3)]).first)
            #expect(row.values.count == 2)
            #expect(row.values[1] == .null, "\(row.values)")
        }
    }

    @Test("a full cache finalizes its least recently used statement, so texts that vary pass through without pushing out those in use")
    func leastRecentlyUsed() async throws {
        try await withParley { app, context in
            guard case .sqlite(let path) = context.settings.database else { return }
            let writer = DirectSQLiteConnection(path: path, threadPool: app.threadPool, logger: app.logger, cacheLimit: 3)
            defer { writer.close() }
            let hot = "SELECT 1 AS hot"
            _ = try writer.execute(hot, [])
            for n in 1...10 {
                // A text of its own each time (a value written into it), with the hot one in between.
                _ = try writer.execute("SELECT \(n) AS once", [])
                _ = try writer.execute(hot, [])
            }
            #expect(writer.statementsPrepared == 11, "the hot statement was prepared once, each varying text once")
            _ = try writer.execute("SELECT 9 AS once", [])
            _ = try writer.execute("SELECT 10 AS once", [])
            #expect(writer.statementsPrepared == 11, "the two latest are still kept")
            _ = try writer.execute("SELECT 1 AS once", [])
            #expect(writer.statementsPrepared == 12, "an old one was finalized")
            _ = try writer.execute("SELECT 10 AS once", [])
            _ = try writer.execute("SELECT 1 AS once", [])
            _ = try writer.execute("SELECT 2 AS once", [])
            #expect(writer.statementsPrepared == 13)
            _ = try writer.execute(hot, [])
            #expect(writer.statementsPrepared == 14, "the least recently used, here the hot one, went first")
        }
    }

    @Test("`begin` takes a free write lock on the calling thread, and waits for one another connection holds")
    func beginWaitsOnlyWhenHeld() async throws {
        try await withWriter { app, writer, _ in
            let loop = app.eventLoopGroup.any()
            try await writer.begin(on: loop, logger: app.logger)
            _ = try writer.execute("COMMIT", [])
            #expect(writer.beginsThatWaited == 0)

            let other = DirectSQLiteConnection(path: writer.path, threadPool: app.threadPool, logger: app.logger)
            defer { other.close() }
            try await other.begin(on: loop, logger: app.logger)
            let waiting = Task { try await writer.begin(on: loop, logger: app.logger) }
            while writer.beginsThatWaited == 0 { await Task.yield() }
            _ = try other.execute("COMMIT", [])
            try await waiting.value
            _ = try writer.execute("COMMIT", [])
            #expect(writer.beginsThatWaited == 1)
        }
    }

    @Test("a kept `SELECT *` sees a column another connection added since")
    func schemaChange() async throws {
        try await withWriter { app, _, db in
            let pool = try #require(app.db as? any SQLDatabase)
            try await pool.raw("CREATE TABLE writer_grows (a INTEGER NOT NULL)").run()
            try await pool.raw("INSERT INTO writer_grows (a) VALUES (1)").run()
            #expect(try await db.raw("SELECT * FROM writer_grows").first()?.allColumns == ["a"])
            try await pool.raw("ALTER TABLE writer_grows ADD COLUMN b TEXT NOT NULL DEFAULT 'new'").run()
            let row = try #require(try await db.raw("SELECT * FROM writer_grows").first())
            #expect(row.allColumns == ["a", "b"])
            #expect(try row.decode(column: "b", as: String.self) == "new")
        }
    }

    @Test("a constraint violation is a constraint failure to Fluent's callers, and the connection goes on")
    func constraintFailure() async throws {
        try await withWriter { app, writer, db in
            let pool = try #require(app.db as? any SQLDatabase)
            try await pool.raw("CREATE TABLE writer_unique (k TEXT PRIMARY KEY)").run()
            try await writer.begin(on: app.eventLoopGroup.any(), logger: app.logger)
            try await db.raw("INSERT INTO writer_unique (k) VALUES (\(bind: "a"))").run()
            let error = await #expect(throws: DirectSQLiteError.self) {
                try await db.raw("INSERT INTO writer_unique (k) VALUES (\(bind: "a"))").run()
            }
            #expect((error as (any DatabaseError)?)?.isConstraintFailure == true)
            #expect(error?.message.contains("UNIQUE") == true)
            // The same statement, reset after its failure, runs again.
            try await db.raw("INSERT INTO writer_unique (k) VALUES (\(bind: "b"))").run()
            try await db.raw("COMMIT").run()
            struct Key: Decodable, Equatable { let k: String }
            #expect(try await pool.raw("SELECT k FROM writer_unique ORDER BY k").all(decoding: Key.self) == [Key(k: "a"), Key(k: "b")])

            let syntax = await #expect(throws: DirectSQLiteError.self) { try await db.raw("SELEC 1").run() }
            #expect(syntax?.isSyntaxError == true)
            #expect(syntax?.isConstraintFailure == false)
        }
    }

    @Test("Fluent models save and load through it inside a transaction")
    func fluentModels() async throws {
        try await withWriter { app, writer, db in
            try await writer.begin(on: app.eventLoopGroup.any(), logger: app.logger)
            let user = User(handle: "wren", displayName: "Wren", email: nil, passwordHash: "not-a-real-hash")
            try await user.create(on: db)
            let id = try user.requireID()
            let found = try #require(try await User.query(on: db).filter(\.$handle == "wren").first())
            #expect(found.id == id && found.displayName == "Wren")
            try await db.raw("COMMIT").run()
            #expect(try await User.find(id, on: app.db)?.handle == "wren")
        }
    }

    @Test("after close, a statement fails instead of reopening the file")
    func closed() async throws {
        try await withWriter { _, writer, db in
            _ = try await db.raw("SELECT 1 AS one").first()
            writer.close()
            let error = await #expect(throws: DirectSQLiteError.self) { try await db.raw("SELECT 1 AS one").run() }
            #expect(error?.isConnectionClosed == true)
        }
    }

    @Test("only one SELECT statement counts as a read")
    func readsAreSelects() {
        #expect(RoutedSQLiteDatabase.isRead("SELECT 1"))
        #expect(RoutedSQLiteDatabase.isRead("select id FROM users"))
        #expect(!RoutedSQLiteDatabase.isRead("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"))
        #expect(!RoutedSQLiteDatabase.isRead("INSERT INTO t VALUES (1)"))
        #expect(!RoutedSQLiteDatabase.isRead("SELECTED"))
        #expect(!RoutedSQLiteDatabase.isRead("PRAGMA user_version"))
    }

    @Test("the application's single SELECTs run on the read connections; writes and transactions stay on sqlite-nio's pool")
    func routing() async throws {
        try await withParley { app, context in
            guard case .sqlite(let path) = context.settings.database else { return }
            let routed = try #require(app.db as? RoutedSQLiteDatabase, "the application's database routes its reads")
            // Readers of this test's own (one thread, no inline connection: every read on the
            // pool), so the application's background reads do not touch what is counted.
            let readers = SQLiteReaders(path: path, threads: 1, inlineConnections: 0, logger: app.logger)
            let db = RoutedSQLiteDatabase(base: try #require(routed.base as? any Database & SQLDatabase), readers: readers)
            struct Row: Decodable, Equatable { let k: String }
            try await db.raw("CREATE TABLE routed_probe (k TEXT NOT NULL)").run()
            try await db.raw("INSERT INTO routed_probe (k) VALUES (\(bind: "a"))").run()
            #expect(readers.statementsPrepared == 0, "a write is not a reader's")
            for _ in 1...3 {
                #expect(try await db.raw("SELECT k FROM routed_probe").all(decoding: Row.self) == [Row(k: "a")])
            }
            #expect(readers.statementsPrepared == 1, "read three times, prepared once")
            // In a transaction every statement is on its connection, and sees its own writes.
            try await db.transaction { tx in
                let sql = try #require(tx as? any SQLDatabase)
                try await sql.raw("INSERT INTO routed_probe (k) VALUES (\(bind: "b"))").run()
                #expect(try await sql.raw("SELECT k FROM routed_probe ORDER BY k").all(decoding: Row.self) == [Row(k: "a"), Row(k: "b")])
            }
            #expect(readers.statementsPrepared == 1)
            // Fluent's reads go there too, and see what committed.
            let ann = try await app.user("ann")
            #expect(try await User.query(on: db).filter(\.$handle == "ann").first()?.id?.uuidString.lowercased() == ann.id.lowercased())
            #expect(try await User.query(on: db).count() >= 1)
            #expect(readers.statementsPrepared == 3)
            await readers.close()
        }
    }

    @Test("a statement short on average over its last runs runs on the caller's thread; a long one, and one timed fewer than eight times, on the pool")
    func inlineReads() async throws {
        try await withParley { app, context in
            guard case .sqlite(let path) = context.settings.database else { return }
            // A generous limit: this tests the rule, not how fast a debug build is.
            let readers = SQLiteReaders(path: path, threads: 1, inlineConnections: 1, inlineLimit: 1_000, logger: app.logger)
            let point = "SELECT 1 AS n"
            // Some milliseconds of work on any machine: far over the limit.
            let long = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT COUNT(*) AS n FROM c"
            // The pool runs it until it has been timed eight times; then it runs here while its
            // average stays short (the inline connection's first run, which opens the file, may
            // lift it for a few runs): of forty, at least ten run here.
            for _ in 1...SQLiteReaders.inlineAfter { _ = try await readers.read(point, []) }
            #expect(readers.inlineReads == 0, "a statement timed fewer than eight times goes to the pool")
            for _ in 1...40 { _ = try await readers.read(point, []) }
            let inline = readers.inlineReads
            #expect(inline >= 10, "\(inline) of 40 short reads ran on the caller's thread")
            // More runs than it takes to be timed: its average stays far over the limit.
            for _ in 1...(SQLiteReaders.inlineAfter + 2) {
                let rows = try await readers.read(long, [])
                #expect(try rows.first?.decode(column: "n", as: Int.self) == 300_000)
            }
            #expect(readers.inlineReads == inline, "the long statement stayed on the pool")
            // A statement whose binds make it long: once it runs inline (short until now), one
            // long run (many times the limit) sends it back to the pool.
            let counted = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) SELECT COUNT(*) AS n FROM c"
            // Short runs until two in a row ran inline (the first inline run prepares the
            // statement on its connection, and may be slow enough to start the count again).
            var inlineInARow = 0, shortRuns = 0
            while inlineInARow < 2, shortRuns < 500 {
                let before = readers.inlineReads
                _ = try await readers.read(counted, [.integer(2)])
                inlineInARow = readers.inlineReads > before ? inlineInARow + 1 : 0
                shortRuns += 1
            }
            #expect(inlineInARow == 2, "short runs moved it inline")
            let settled = readers.inlineReads
            for _ in 1...3 { _ = try await readers.read(counted, [.integer(300_000)]) }
            #expect(readers.inlineReads == settled + 1, "of three long runs, only the first ran inline")
            await readers.close()
        }
    }

    @Test("a read-only connection refuses a write instead of waiting for the lock")
    func readOnly() async throws {
        try await withParley { app, context in
            guard case .sqlite(let path) = context.settings.database else { return }
            let reader = DirectSQLiteConnection(path: path, threadPool: app.threadPool, logger: app.logger, readOnly: true)
            defer { reader.close() }
            let error = #expect(throws: DirectSQLiteError.self) {
                _ = try reader.execute("CREATE TABLE nope (a INTEGER)", [])
            }
            #expect(error.map { $0.code & 0xFF } == 8, "SQLITE_READONLY")
        }
    }
}
