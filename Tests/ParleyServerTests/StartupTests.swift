import Foundation
import Testing
import SQLKit
import VaporTesting
@testable import ParleyServer

@Suite("Start-up")
struct StartupTests {
    @Test("production refuses an unmigrated schema, naming the pending migrations")
    func productionNeedsMigratedSchema() async throws {
        try await withParley(migrate: false, { $0.mode = .production; $0.autoMigrate = false }) { app, _ in
            do {
                try await prepareToServe(app)
                Issue.record("expected a refusal")
            } catch let error as SettingsError {
                #expect(error.description.contains("2026-11-25-CreateUsers"))
                #expect(error.description.contains("parley migrate"))
            }
            try await app.autoMigrate()
            try await prepareToServe(app)
        }
    }

    @Test("production refuses to configure without a secret")
    func productionNeedsSecret() async throws {
        let app = try await Application.make(.testing)
        var settings = Settings.testing()
        settings.mode = .production
        settings.secretKey = nil
        await #expect(throws: SettingsError.self) {
            try await configure(app, settings: settings)
        }
        try await app.asyncShutdown()
    }

    @Test("an SQLite file runs in WAL mode with foreign keys and a busy timeout on every connection",
          .enabled(if: TestDatabase.postgresURL == nil))
    func sqlitePragmas() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withParley({ $0.database = .sqlite(path: directory.appendingPathComponent("p.sqlite").path) }) { app, _ in
            for eventLoop in app.eventLoopGroup.makeIterator() {
                let db = try #require(app.databases.database(.sqlite, logger: app.logger, on: eventLoop) as? any SQLDatabase)
                struct Row: Decodable { let journal_mode: String?; let foreign_keys: Int?; let timeout: Int? }
                #expect(try await db.raw("PRAGMA journal_mode").first(decoding: Row.self)?.journal_mode == "wal")
                #expect(try await db.raw("PRAGMA foreign_keys").first(decoding: Row.self)?.foreign_keys == 1)
                #expect(try await db.raw("PRAGMA busy_timeout").first(decoding: Row.self)?.timeout == 10000)
            }
        }
    }

    @Test("migrations revert cleanly and apply again")
    func migrationsRevert() async throws {
        try await withParley { app, _ in
            try await app.register("yuri")
            try await app.autoRevert()
            #expect(try await DatabaseSetup.pendingMigrations(app).contains("2026-11-25-CreateUsers"))
            try await app.autoMigrate()
            #expect(try await DatabaseSetup.pendingMigrations(app).isEmpty)
            #expect(try await User.query(on: app.db).count() == 0)
        }
    }

    @Test("create-admin reads the password from standard input and makes an admin")
    func createAdmin() async throws {
        try await withParley { app, _ in
            let accounts = try #require(app.storage[AccountsKey.self])
            let (user, _) = try await accounts.service(app.db).createUser(
                handle: "root", displayName: nil, email: nil, password: "a long admin password", role: .admin)
            #expect(user.role == .admin)
            #expect(user.displayName == "root")
            let login = try await app.send(.POST, "v1/auth/login", json: #"{"handle":"root","password":"a long admin password"}"#)
            #expect((login["user"] as? [String: Any])?["role"] as? String == "admin")
        }
    }
}
