import Foundation
import NIOConcurrencyHelpers
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

/// A clock tests can move. Timers that wait on it (`AppClock.sleepUntil`) run when a test
/// moves it past their deadline, never by themselves.
final class TestClock: Sendable {
    private struct State {
        var now = Date(timeIntervalSince1970: 1_790_000_000)
        var sleepers: [(deadline: Date, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = NIOLockedValueBox(State())
    var now: Date { state.withLockedValue { $0.now } }

    func advance(by seconds: TimeInterval) {
        let due = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.now = state.now.addingTimeInterval(seconds)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.map(\.continuation)
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for continuation in due { continuation.resume() }
    }

    func sleep(until deadline: Date) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLockedValue { state -> Bool in
                if deadline <= state.now { return true }
                state.sleepers.append((deadline, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    var appClock: AppClock {
        AppClock(now: { [self] in self.now }, sleepUntil: { [self] deadline in await self.sleep(until: deadline) })
    }

    deinit {
        // Timers still waiting when the test ends are let go.
        for sleeper in state.withLockedValue({ $0.sleepers }) { sleeper.continuation.resume() }
    }
}

/// Everything a test may look at besides the application.
struct TestContext: Sendable {
    let clock: TestClock
    let logs: MemoryLogSink
    let settings: Settings
}

/// The database the suite runs on: in-memory SQLite, or PostgreSQL when
/// `PARLEY_TEST_DATABASE_URL` is set (each test in a schema of its own, dropped afterwards).
enum TestDatabase {
    static var postgresURL: String? {
        ProcessInfo.processInfo.environment["PARLEY_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static var name: String { postgresURL == nil ? "sqlite" : "postgres" }
}

/// Builds, migrates and tears down an application for one test.
func withParley(
    migrate: Bool = true,
    logLevel: Logger.Level = .info,
    _ adjust: (inout Settings) -> Void = { _ in },
    _ body: (Application, TestContext) async throws -> Void
) async throws {
    var schema: String?
    var databaseFile: String?
    var settings: Settings
    if let url = TestDatabase.postgresURL {
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        schema = name
        settings = .testing(database: .postgres(url: url, searchPath: name))
    } else {
        // A file in WAL mode, as Parley runs: an in-memory database shares one cache between
        // its connections, where a write and a concurrent read collide (SQLITE_LOCKED) in a way
        // a real database file never does.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("parley-test-\(UUID().uuidString).sqlite").path
        databaseFile = file
        settings = .testing(database: .sqlite(path: file))
    }
    settings.logLevel = logLevel
    // Uploaded files in a folder of the test's own.
    let filesDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-files-\(UUID().uuidString)").path
    settings.files.directory = filesDirectory
    adjust(&settings)
    defer { try? FileManager.default.removeItem(atPath: filesDirectory) }

    let clock = TestClock()
    let logs = MemoryLogSink()
    let app = try await Application.make(.testing)
    app.logger = Logger(label: "parley.test") { label in JSONLogHandler(label: label, level: logLevel, sink: logs) }
    app.logger.logLevel = logLevel
    do {
        try await configure(app, settings: settings, clock: clock.appClock)
        if let schema, let sql = app.db as? any SQLDatabase {
            try await sql.raw("CREATE SCHEMA \(ident: schema)").run()
        }
        if migrate { try await prepareToServe(app) }
        try await body(app, TestContext(clock: clock, logs: logs, settings: settings))
    } catch {
        await dropSchema(schema, app)
        try? await app.asyncShutdown()
        removeDatabaseFile(databaseFile)
        throw error
    }
    await dropSchema(schema, app)
    try await app.asyncShutdown()
    removeDatabaseFile(databaseFile)
}

private func removeDatabaseFile(_ path: String?) {
    guard let path else { return }
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
}

private func dropSchema(_ schema: String?, _ app: Application) async {
    guard let schema, let sql = app.db as? any SQLDatabase else { return }
    try? await sql.raw("DROP SCHEMA \(ident: schema) CASCADE").run()
}

/// A response decoded as a JSON object, for assertions on exact wire fields.
struct JSONResponse {
    let status: HTTPResponseStatus
    let headers: HTTPHeaders
    let body: String
    var object: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }
    subscript(key: String) -> Any? { object[key] }
    func string(_ key: String) -> String? { object[key] as? String }
    var fieldErrors: [String: String] {
        var out: [String: String] = [:]
        for item in object["errors"] as? [[String: Any]] ?? [] {
            if let field = item["field"] as? String { out[field] = item["code"] as? String }
        }
        return out
    }
}

extension Application {
    /// Sends a request with an optional raw JSON body and bearer token.
    @discardableResult
    func send(
        _ method: HTTPMethod, _ path: String, json: String? = nil, token: String? = nil,
        headers extra: HTTPHeaders = [:]
    ) async throws -> JSONResponse {
        var headers = extra
        if json != nil, !headers.contains(name: .contentType) { headers.contentType = .json }
        if let token { headers.bearerAuthorization = BearerAuthorization(token: token) }
        let response = try await testing().sendRequest(method, path, headers: headers,
                                                       body: json.map { ByteBuffer(string: $0) })
        return JSONResponse(status: response.status, headers: response.headers, body: response.body.string)
    }

    /// Registers a user and returns the token response.
    @discardableResult
    func register(_ handle: String, password: String = "correct horse battery", email: String? = nil) async throws -> JSONResponse {
        var fields = [#""handle":"\#(handle)""#, #""password":"\#(password)""#]
        if let email { fields.append(#""email":"\#(email)""#) }
        let response = try await send(.POST, "v1/auth/register", json: "{" + fields.joined(separator: ",") + "}")
        #expect(response.status == .created, "register \(handle): \(response.body)")
        return response
    }
}

/// Checks the RFC 9457 shape every error shares.
func expectProblem(_ response: JSONResponse, _ status: HTTPResponseStatus, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.status == status, "\(response.body)", sourceLocation: sourceLocation)
    #expect(response.headers.first(name: .contentType)?.hasPrefix("application/problem+json") == true, sourceLocation: sourceLocation)
    let object = response.object
    #expect(object["type"] is String, sourceLocation: sourceLocation)
    #expect(object["title"] is String, sourceLocation: sourceLocation)
    #expect(object["status"] as? Int == Int(status.code), sourceLocation: sourceLocation)
    #expect(object["instance"] is String, sourceLocation: sourceLocation)
    #expect((object["request_id"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
    #expect(response.headers.first(name: "X-Request-ID") == object["request_id"] as? String, sourceLocation: sourceLocation)
}
