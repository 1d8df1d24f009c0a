import NIOConcurrencyHelpers
import Fluent
import FluentPostgresDriver
import FluentSQLiteDriver
import SQLKit
import Vapor

enum DatabaseSetup {
    /// Registers the configured database as Fluent's default.
    static func configure(_ app: Application, settings: Settings) throws {
        switch settings.database {
        case .sqlite(let path):
            app.databases.use(.sqlite(.file(path), sqlLogLevel: .debug), as: .sqlite)
        case .sqliteInMemory:
            app.databases.use(.sqlite(.memory, sqlLogLevel: .debug), as: .sqlite)
        case .postgres(let url, let searchPath):
            var config = try postgresConfiguration(url)
            if let searchPath { config.searchPath = [searchPath] }
            app.databases.use(.postgres(configuration: config, maxConnectionsPerEventLoop: settings.postgresConnectionsPerEventLoop,
                                        sqlLogLevel: .debug), as: .psql)
        }
    }

    static func postgresConfiguration(_ url: String) throws -> SQLPostgresConfiguration {
        try SQLPostgresConfiguration(url: url)
    }

    /// The most connections the pool opens: one per event loop for SQLite (sqlite-kit's fixed
    /// size), `Settings.postgresConnectionsPerEventLoop` per loop for PostgreSQL.
    static func poolSize(_ settings: Settings, eventLoops: Int) -> (driver: String, connections: Int) {
        switch settings.database {
        case .sqlite, .sqliteInMemory: ("sqlite", eventLoops)
        case .postgres: ("postgres", eventLoops * settings.postgresConnectionsPerEventLoop)
        }
    }

    /// Per-connection SQLite settings. sqlite-kit opens one connection per event loop and
    /// offers no hook for new connections, so each loop's connection is configured here at
    /// start-up. WAL is a property of the file and persists.
    static func prepareSQLite(_ app: Application) async throws {
        guard app.databases.configuration(for: .sqlite) != nil else { return }
        for eventLoop in app.eventLoopGroup.makeIterator() {
            guard let db = app.databases.database(.sqlite, logger: app.logger, on: eventLoop) else { return }
            try await db.withConnection { connection in
                guard let sql = connection as? any SQLDatabase else { return }
                for pragma in ["journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 10000", "foreign_keys = ON"] {
                    try await sql.raw("PRAGMA \(unsafeRaw: pragma)").run()
                }
            }
        }
    }

    /// Names of migrations not yet applied; throws when the database cannot be reached.
    static func pendingMigrations(_ app: Application) async throws -> [String] {
        try await app.migrator.previewPrepareBatch().get().map { $0.0.name }
    }
}

/// Lets one SQLite write transaction run at a time in this process, first come first served.
///
/// SQLite has a single writer. Without this, concurrent writers on the pool's connections
/// would wait inside SQLite's busy handler, which polls with sleeps and gives up after
/// `busy_timeout`, so a burst of writers on a loaded machine turns into errors. Queued here,
/// a writer waits without polling and without a deadline. (Hand-written: no listed package
/// offers an async mutex.) Unused on PostgreSQL, which has row locks.
actor WriteLock {
    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            held = false
        } else {
            // Ownership passes straight to the next waiter.
            waiters.removeFirst().resume()
        }
    }
}

/// How this process writes: the SQLite write lock, and who to tell when a write transaction
/// has committed (the event hub, which then reads the new events).
final class Writes: Sendable {
    /// Present on SQLite only.
    let lock: WriteLock?
    private let observers = NIOLockedValueBox<[@Sendable () -> Void]>([])

    init(serialize: Bool) {
        lock = serialize ? WriteLock() : nil
    }

    func onCommit(_ observer: @escaping @Sendable () -> Void) {
        observers.withLockedValue { $0.append(observer) }
    }

    func committed() {
        for observer in observers.withLockedValue({ $0 }) { observer() }
    }
}

extension Database {
    /// A transaction for changes. On SQLite it waits its turn at the write lock, then begins
    /// `IMMEDIATE`, taking the write lock before the first statement: a deferred transaction
    /// that reads and then writes fails with SQLITE_BUSY_SNAPSHOT when another connection
    /// commits in between. On PostgreSQL this is Fluent's transaction. The closure must not
    /// open a transaction of its own.
    func writeTransaction<T: Sendable>(_ writes: Writes?, _ closure: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        guard let sql = self as? any SQLDatabase, sql.dialect.name == "sqlite" else {
            let result = try await transaction(closure)
            writes?.committed()
            return result
        }
        let lock = writes?.lock
        await lock?.acquire()
        do {
            let result = try await withConnection { connection in
                guard let sql = connection as? any SQLDatabase else { return try await connection.transaction(closure) }
                try await sql.raw("BEGIN IMMEDIATE").run()
                do {
                    let result = try await closure(connection)
                    try await sql.raw("COMMIT").run()
                    return result
                } catch {
                    try? await sql.raw("ROLLBACK").run()
                    throw error
                }
            }
            await lock?.release()
            writes?.committed()
            return result
        } catch {
            await lock?.release()
            throw error
        }
    }
}
