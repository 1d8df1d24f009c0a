import Foundation
import Testing
import VaporTesting
@testable import ParleyServer

@Suite("Browser sessions and CSRF")
struct SessionTests {
    /// Signs in through the browser endpoint; returns the cookie header value and the CSRF token.
    func signIn(_ app: Application, handle: String) async throws -> (cookie: String, csrf: String, setCookie: String) {
        try await app.register(handle)
        let response = try await app.send(.POST, "v1/auth/session", json: #"{"handle":"\#(handle)","password":"correct horse battery"}"#)
        #expect(response.status == .created, "\(response.body)")
        let setCookie = try #require(response.headers.first(name: .setCookie))
        let pair = try #require(setCookie.split(separator: ";").first)
        let csrf = try #require(response.string("csrf_token"))
        return (String(pair), csrf, setCookie)
    }

    @Test("the session cookie is HttpOnly and SameSite=Lax, and not Secure outside production")
    func cookieAttributes() async throws {
        try await withParley { app, _ in
            let session = try await signIn(app, handle: "pam")
            #expect(session.cookie.hasPrefix("parley_session="))
            #expect(session.setCookie.contains("HttpOnly"))
            #expect(session.setCookie.contains("SameSite=Lax"))
            #expect(!session.setCookie.contains("Secure"))
            #expect(session.setCookie.contains("Path=/"))
        }
    }

    @Test("the cookie is Secure in production")
    func secureInProduction() async throws {
        try await withParley({ $0.mode = .production }) { app, _ in
            let session = try await signIn(app, handle: "quinn")
            #expect(session.setCookie.contains("Secure"))
        }
    }

    @Test("a cookie reads without a CSRF token; an unsafe request needs the right one")
    func csrf() async throws {
        try await withParley { app, _ in
            let session = try await signIn(app, handle: "rita")
            let read = try await app.send(.GET, "v1/me", headers: ["Cookie": session.cookie])
            #expect(read.status == .ok)
            #expect(read.string("handle") == "rita")

            let missing = try await app.send(.PATCH, "v1/me", json: #"{"bio":"x"}"#, headers: ["Cookie": session.cookie])
            expectProblem(missing, .forbidden)
            #expect(missing.string("type") == "/problems/csrf-failed")

            let wrong = try await app.send(.PATCH, "v1/me", json: #"{"bio":"x"}"#, headers: ["Cookie": session.cookie, "X-CSRF-Token": "forged"])
            expectProblem(wrong, .forbidden)

            let other = try await signIn(app, handle: "sam")
            let crossed = try await app.send(.PATCH, "v1/me", json: #"{"bio":"x"}"#, headers: ["Cookie": session.cookie, "X-CSRF-Token": other.csrf])
            expectProblem(crossed, .forbidden)

            let good = try await app.send(.PATCH, "v1/me", json: #"{"bio":"from the browser"}"#, headers: ["Cookie": session.cookie, "X-CSRF-Token": session.csrf])
            #expect(good.status == .ok)
            #expect((good["profile"] as? [String: Any])?["bio"] as? String == "from the browser")
        }
    }

    @Test("bearer requests need no CSRF token")
    func bearerNeedsNoCSRF() async throws {
        try await withParley { app, _ in
            let access = try #require(try await app.register("tess").string("access_token"))
            #expect(try await app.send(.PATCH, "v1/me", json: #"{"bio":"x"}"#, token: access).status == .ok)
        }
    }

    @Test("DELETE /v1/auth/session ends the session and clears the cookie")
    func deleteSession() async throws {
        try await withParley { app, _ in
            let session = try await signIn(app, handle: "uma")
            expectProblem(try await app.send(.DELETE, "v1/auth/session", headers: ["Cookie": session.cookie]), .forbidden)
            let deleted = try await app.send(.DELETE, "v1/auth/session", headers: ["Cookie": session.cookie, "X-CSRF-Token": session.csrf])
            #expect(deleted.status == .noContent)
            #expect(deleted.headers.first(name: .setCookie)?.contains("Max-Age=0") == true)
            expectProblem(try await app.send(.GET, "v1/me", headers: ["Cookie": session.cookie]), .unauthorized)
        }
    }

    @Test("a wrong password for a browser session is 401")
    func wrongPassword() async throws {
        try await withParley { app, _ in
            try await app.register("vera")
            let response = try await app.send(.POST, "v1/auth/session", json: #"{"handle":"vera","password":"not my password"}"#)
            expectProblem(response, .unauthorized)
            #expect(response.headers.first(name: .setCookie) == nil)
        }
    }
}
