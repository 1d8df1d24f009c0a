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
            // Single SELECTs go to read connections of Parley's own (`SQLiteReaders`), one per
            // core; the rest to sqlite-nio's pool.
            let factory = DatabaseConfigurationFactory.sqlite(.file(path), sqlLogLevel: .debug)
            let readers = SQLiteReaders(path: path, threads: System.coreCount, logger: app.logger)
            app.databases.use(DatabaseConfigurationFactory { RoutedSQLiteConfiguration(base: factory.make(), readers: readers) },
                              as: .sqlite)
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

    /// The settings every SQLite connection gets (the pool's and the write gate's own).
    /// The busy timeout comes first, so that a lock held elsewhere while the others are set
    /// (a checkpoint, another process) is waited for.
    ///
    /// `temp_store = MEMORY` keeps statement journals in memory. A group commit gives each
    /// send a savepoint, and SQLite copies every page a send changes into the savepoint's
    /// journal first; by default that journal spills to a temporary file past 64 KiB, which a
    /// send with its triggers passes (measured: more `pwrite`s to `/var/tmp` than to the WAL,
    /// and a temporary file opened per transaction). Only temporary tables and large sorts
    /// also use it, and Parley makes none on the write path.
    static let sqlitePragmas = ["busy_timeout = \(DirectSQLiteConnection.busyTimeoutMilliseconds)", "journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON",
                                "temp_store = MEMORY"]

    /// Per-connection SQLite settings. sqlite-kit opens one connection per event loop and
    /// offers no hook for new connections, so each loop's connection is configured here at
    /// start-up. WAL is a property of the file and persists.
    static func prepareSQLite(_ app: Application) async throws {
        guard app.databases.configuration(for: .sqlite) != nil else { return }
        for eventLoop in app.eventLoopGroup.makeIterator() {
            guard let db = app.databases.database(.sqlite, logger: app.logger, on: eventLoop) else { return }
            try await db.withConnection { connection in
                guard let sql = connection as? any SQLDatabase else { return }
                for pragma in sqlitePragmas {
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
