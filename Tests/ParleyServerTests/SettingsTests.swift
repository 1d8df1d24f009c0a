import Foundation
import Testing
@testable import ParleyServer

@Suite("Settings")
struct SettingsTests {
    @Test("no variables gives the embedded development defaults")
    func defaults() throws {
        let settings = try Settings.load(from: [:])
        #expect(settings.mode == .development)
        #expect(settings.database == .sqlite(path: "parley.sqlite"))
        #expect(settings.host == "127.0.0.1" && settings.port == 8080)
        #expect(settings.secretKey == nil)
        #expect(settings.autoMigrate)
        #expect(settings.accessTokenLifetime == .seconds(900))
    }

    @Test("a postgres URL switches the database and nothing else")
    func postgresURL() throws {
        let settings = try Settings.load(from: ["PARLEY_DATABASE_URL": "postgres://u:p@127.0.0.1:5432/parley"])
        #expect(settings.database == .postgres(url: "postgres://u:p@127.0.0.1:5432/parley"))
        #expect(settings.mode == .development)
    }

    @Test("PARLEY_JOB_CONCURRENCY sets how many jobs the node runs at once, and is checked")
    func jobConcurrency() throws {
        #expect(try Settings.load(from: [:]).jobWorker.concurrency == 32)
        #expect(try Settings.load(from: ["PARLEY_JOB_CONCURRENCY": "8"]).jobWorker.concurrency == 8)
        for bad in ["0", "1001", "many"] {
            #expect {
                try Settings.load(from: ["PARLEY_JOB_CONCURRENCY": bad])
            } throws: { error in
                (error as? SettingsError)?.description.contains("PARLEY_JOB_CONCURRENCY") == true
            }
        }
    }

    @Test("production without a secret refuses, naming the variable")
    func productionNeedsSecret() {
        #expect {
            try Settings.load(from: ["PARLEY_ENV": "production"])
        } throws: { error in
            (error as? SettingsError)?.description.contains("PARLEY_SECRET_KEY") == true
        }
    }

    @Test("production with a secret does not migrate on its own")
    func productionWithSecret() throws {
        let settings = try Settings.load(from: ["PARLEY_ENV": "production", "PARLEY_SECRET_KEY": String(repeating: "k", count: 40)])
        #expect(settings.mode == .production)
        #expect(settings.autoMigrate == false)
        #expect(settings.secureCookies)
    }

    @Test("every bad variable is reported at once")
    func allProblemsAtOnce() {
        do {
            _ = try Settings.load(from: [
                "PARLEY_PORT": "99999", "PARLEY_SECRET_KEY": "short", "PARLEY_LOG_LEVEL": "trace",
                "PARLEY_DATABASE_URL": "mysql://x", "PARLEY_TOKEN_ALGORITHM": "none", "PARLEY_HOST": "999.1.1.1",
            ])
            Issue.record("expected a SettingsError")
        } catch let error as SettingsError {
            let text = error.description
            for name in ["PARLEY_PORT", "PARLEY_SECRET_KEY", "PARLEY_LOG_LEVEL", "PARLEY_DATABASE_URL", "PARLEY_TOKEN_ALGORITHM", "PARLEY_HOST"] {
                #expect(text.contains(name), "missing \(name) in: \(text)")
            }
            #expect(error.problems.count == 6)
            #expect(!text.contains("short"), "the secret's value must not be echoed")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("variables outside PARLEY_ are ignored")
    func ignoresOtherVariables() throws {
        let settings = try Settings.load(from: ["PORT": "1", "DATABASE_URL": "postgres://elsewhere"])
        #expect(settings.port == 8080)
        #expect(settings.database == .sqlite(path: "parley.sqlite"))
    }

    @Test("the development secret is generated once, mode 0600, and reused")
    func developmentSecret() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try DevelopmentSecret.loadOrCreate(in: directory)
        #expect(first.created)
        #expect(first.secret.utf8.count >= Settings.minimumSecretLength)
        let attributes = try FileManager.default.attributesOfItem(atPath: first.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let second = try DevelopmentSecret.loadOrCreate(in: directory)
        #expect(!second.created)
        #expect(second.secret == first.secret)
    }

    @Test("listen addresses: IP literals and host names pass, impossible ones are refused")
    func listenAddresses() {
        for good in ["127.0.0.1", "0.0.0.0", "::1", "::", "localhost", "chat.example.com", "node-1"] {
            #expect(Settings.isListenAddress(good), "\(good)")
        }
        for bad in ["999.1.1.1", "1.2.3", "", "bad host", "-lead.example", "a..b", "exa_mple.com"] {
            #expect(!Settings.isListenAddress(bad), "\(bad)")
        }
    }

    @Test("a data directory that cannot be created is named in the error")
    func unusableDataDirectory() {
        do {
            _ = try DevelopmentSecret.loadOrCreate(in: "/proc/nope")
            Issue.record("expected a SettingsError")
        } catch let error as SettingsError {
            #expect(error.description.contains("PARLEY_DATA_DIR"), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("serve is the default command")
    func serveIsDefault() {
        #expect(ParleyMain.isServe(["parley"]))
        #expect(ParleyMain.isServe(["parley", "serve", "--port", "1"]))
        #expect(ParleyMain.isServe(["parley", "--env", "x"]))
        #expect(!ParleyMain.isServe(["parley", "migrate"]))
        #expect(!ParleyMain.isServe(["parley", "create-admin", "--handle", "root"]))
    }

    @Test("commands that use data migrate first; help and routes touch no database; migrate prepares only the connection")
    func preparations() {
        #expect(ParleyMain.preparation(for: ["parley", "create-admin", "--handle", "root"]) == .database)
        #expect(ParleyMain.preparation(for: ["parley", "seed", "--users", "3"]) == .database)
        #expect(ParleyMain.preparation(for: ["parley", "migrate", "--yes"]) == .migrate)
        #expect(ParleyMain.preparation(for: ["parley", "--help"]) == .none)
        #expect(ParleyMain.preparation(for: ["parley", "serve", "--help"]) == .none)
        #expect(ParleyMain.preparation(for: ["parley", "routes"]) == .none)
    }
}
