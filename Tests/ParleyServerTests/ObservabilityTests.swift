import Foundation
import Testing
import VaporTesting
@testable import ParleyServer

@Suite("Observability")
struct ObservabilityTests {
    @Test("every response carries a request id; a sane one is kept, an insane one replaced")
    func requestID() async throws {
        try await withParley { app, _ in
            let generated = try await app.send(.GET, "healthz")
            let id = try #require(generated.headers.first(name: "X-Request-ID"))
            #expect(id.count >= 16)
            let kept = try await app.send(.GET, "healthz", headers: ["X-Request-ID": "abc-123_x.y:z"])
            #expect(kept.headers.first(name: "X-Request-ID") == "abc-123_x.y:z")
            let replaced = try await app.send(.GET, "healthz", headers: ["X-Request-ID": "bad id\u{7F}<script>"])
            #expect(replaced.headers.first(name: "X-Request-ID") != "bad id\u{7F}<script>")
            let tooLong = try await app.send(.GET, "healthz", headers: ["X-Request-ID": String(repeating: "a", count: 129)])
            #expect(tooLong.headers.first(name: "X-Request-ID")?.count != 129)
        }
    }

    @Test("one JSON access-log line per request with route pattern, status, duration and user")
    func accessLog() async throws {
        try await withParley { app, context in
            let registered = try await app.register("wanda")
            let userID = try #require((registered["user"] as? [String: Any])?["id"] as? String)
            try await app.send(.GET, "v1/me", token: registered.string("access_token"), headers: ["X-Request-ID": "trace-me-1"])
            let lines = context.logs.contents.compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            }
            #expect(lines.count == context.logs.contents.count, "every log line is JSON")
            let entry = try #require(lines.first { $0["request_id"] as? String == "trace-me-1" && $0["message"] as? String == "request" })
            #expect(entry["method"] as? String == "GET")
            #expect(entry["route"] as? String == "/v1/me")
            #expect(entry["status"] as? Int == 200)
            #expect(entry["duration_ms"] is Double || entry["duration_ms"] is Int)
            #expect(entry["user_id"] as? String == userID)
            #expect(entry["time"] is String)
        }
    }

    @Test("/metrics counts requests by route pattern, method and status")
    func metrics() async throws {
        try await withParley { app, _ in
            try await app.send(.GET, "healthz")
            try await app.send(.GET, "v1/no/such/thing")
            let response = try await app.testing().sendRequest(.GET, "metrics")
            #expect(response.status == .ok)
            let text = response.body.string
            #expect(response.headers.first(name: .contentType)?.hasPrefix("text/plain") == true)
            #expect(text.contains(#"parley_http_requests_total{method="GET",route="/healthz",status="200"} 1"#))
            #expect(text.contains(#"parley_http_requests_total{method="GET",route="unmatched",status="404"} 1"#))
            #expect(text.contains("parley_http_request_duration_seconds_bucket"))
            #expect(text.contains("parley_db_pool_connections_max"))
        }
    }

    @Test("healthz is ok; readyz checks the database and the schema")
    func health() async throws {
        try await withParley { app, _ in
            #expect(try await app.send(.GET, "healthz").string("status") == "ok")
            let ready = try await app.send(.GET, "readyz")
            #expect(ready.status == .ok)
            #expect(ready.string("database") == "ok")
        }
    }

    @Test("readyz is 503 and names pending migrations when the schema is behind")
    func notReady() async throws {
        try await withParley(migrate: false) { app, _ in
            try await app.migrator.setupIfNeeded().get()
            let ready = try await app.send(.GET, "readyz")
            #expect(ready.status == .serviceUnavailable)
            #expect((ready["pending_migrations"] as? [String])?.contains("2026-11-25-CreateUsers") == true)
        }
    }

    @Test("passwords, tokens, cookies and CSRF tokens never reach the log, even at debug")
    func noSecretsInLogs() async throws {
        try await withParley(logLevel: .debug) { app, context in
            let password = "sup3r-secret-passphrase"
            let registered = try await app.send(.POST, "v1/auth/register", json: #"{"handle":"xena","password":"\#(password)"}"#)
            let access = try #require(registered.string("access_token"))
            let refresh = try #require(registered.string("refresh_token"))
            let rotated = try await app.send(.POST, "v1/auth/refresh", json: #"{"refresh_token":"\#(refresh)"}"#)
            try await app.send(.POST, "v1/auth/refresh", json: #"{"refresh_token":"\#(refresh)"}"#)
            try await app.send(.POST, "v1/auth/login", json: #"{"handle":"xena","password":"wrong-\#(password)"}"#)
            let session = try await app.send(.POST, "v1/auth/session", json: #"{"handle":"xena","password":"\#(password)"}"#)
            let cookie = try #require(session.headers.first(name: .setCookie)?.split(separator: ";").first?.split(separator: "=").last.map(String.init))
            let csrf = try #require(session.string("csrf_token"))
            try await app.send(.PUT, "v1/me/password", json: #"{"current_password":"\#(password)","new_password":"another-\#(password)"}"#,
                               headers: ["Cookie": "parley_session=\(cookie)", "X-CSRF-Token": csrf])
            try await app.send(.GET, "v1/me", token: access)

            let log = context.logs.contents.joined()
            #expect(log.contains("\"message\":\"request\""), "the log was captured")
            #expect(log.contains("SELECT") || log.contains("INSERT"), "SQL is logged at debug, so this test sees it")
            let secrets = [password, access, refresh, rotated.string("access_token") ?? "-", rotated.string("refresh_token") ?? "-", cookie, csrf]
            for secret in secrets {
                #expect(!log.contains(secret), "a secret reached the log")
            }
            // Nor the signature part of a token alone.
            #expect(!log.contains(String(access.split(separator: ".")[2])))
        }
    }
}
