import Foundation
import Testing
import VaporTesting
@testable import ParleyServer

/// The web client as the server serves it: the page, its fingerprinted assets, the caching
/// and security headers, and the session a reloaded page reads.
@Suite("Web client")
struct WebClientTests {
    @Test("the page is revalidated on every load, names its assets by version, and carries a strict CSP")
    func page() async throws {
        try await withParley { app, _ in
            let page = try await app.send(.GET, "/")
            #expect(page.status == .ok)
            #expect(page.headers.first(name: .contentType) == "text/html; charset=utf-8")
            #expect(page.headers.first(name: .cacheControl) == "no-cache")
            let csp = try #require(page.headers.first(name: "Content-Security-Policy"))
            #expect(csp.contains("script-src 'self'"))
            #expect(csp.contains("default-src 'none'"))
            #expect(csp.contains("frame-ancestors 'none'"))
            #expect(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"))
            let assets = try #require(app.storage[WebAssetsKey.self])
            #expect(page.body.contains("/assets/\(assets.version)/app.js"))
            #expect(!page.body.contains(WebAssets.placeholder))
            #expect(!page.body.contains("<script>"), "no inline script")

            // when the browser asks again with the ETag it has
            let etag = try #require(page.headers.first(name: .eTag))
            let again = try await app.send(.GET, "/", headers: ["If-None-Match": etag])
            // then nothing is sent again
            #expect(again.status == .notModified)
            #expect(again.body.isEmpty)
        }
    }

    @Test("assets of the current version are cached for a year; an unknown file is 404; an old version is not cached")
    func assets() async throws {
        try await withParley { app, _ in
            let version = try #require(app.storage[WebAssetsKey.self]).version
            let script = try await app.send(.GET, "/assets/\(version)/app.js")
            #expect(script.status == .ok)
            #expect(script.headers.first(name: .contentType) == "text/javascript; charset=utf-8")
            #expect(script.headers.first(name: .cacheControl) == "public, max-age=31536000, immutable")
            #expect(script.body.contains("import"))
            let module = try await app.send(.GET, "/assets/\(version)/lib/api.js")
            #expect(module.status == .ok)
            let etag = try #require(module.headers.first(name: .eTag))
            #expect(try await app.send(.GET, "/assets/\(version)/lib/api.js", headers: ["If-None-Match": etag]).status == .notModified)

            #expect(try await app.send(.GET, "/assets/\(version)/nothing.js").status == .notFound)
            #expect(try await app.send(.GET, "/assets/\(version)/../Package.swift").status == .notFound)
            let old = try await app.send(.GET, "/assets/000000000000/app.js")
            #expect(old.status == .ok)
            #expect(old.headers.first(name: .cacheControl) == "no-cache")
        }
    }

    @Test("the version changes when any file changes, and only then")
    func versions() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("web-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("lib"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(#"<script type="module" src="__ASSETS__/app.js"></script>"#.utf8).write(to: directory.appendingPathComponent("index.html"))
        try Data("import './lib/a.js'".utf8).write(to: directory.appendingPathComponent("app.js"))
        try Data("export const a = 1".utf8).write(to: directory.appendingPathComponent("lib/a.js"))
        let first = try #require(try WebAssets.load(from: directory))
        #expect(Set(first.files.keys) == ["app.js", "lib/a.js"])
        #expect(String(buffer: first.index.body) == #"<script type="module" src="/assets/\#(first.version)/app.js"></script>"#)
        #expect(try WebAssets.load(from: directory)?.version == first.version)
        try Data("export const a = 2".utf8).write(to: directory.appendingPathComponent("lib/a.js"))
        #expect(try WebAssets.load(from: directory)?.version != first.version)
        try FileManager.default.removeItem(at: directory.appendingPathComponent("index.html"))
        #expect(try WebAssets.load(from: directory) == nil)
    }

    @Test("a reloaded page reads its session: the user and the same CSRF token; API tokens and strangers are refused")
    func session() async throws {
        try await withParley { app, _ in
            let tokens = try await app.register("vera")
            let created = try await app.send(.POST, "v1/auth/session", json: #"{"handle":"vera","password":"correct horse battery"}"#)
            let cookie = try #require(created.headers.first(name: .setCookie)?.split(separator: ";").first.map(String.init))

            let read = try await app.send(.GET, "v1/auth/session", headers: ["Cookie": cookie])
            #expect(read.status == .ok)
            #expect(read.string("csrf_token") == created.string("csrf_token"))
            #expect((read["user"] as? [String: Any])?["handle"] as? String == "vera")
            #expect(read.string("expires_at") == created.string("expires_at"))
            #expect(read.headers.first(name: .cacheControl) == "no-store")

            expectProblem(try await app.send(.GET, "v1/auth/session", token: tokens.string("access_token")), .badRequest)
            expectProblem(try await app.send(.GET, "v1/auth/session"), .unauthorized)
            _ = try await app.send(.DELETE, "v1/auth/session", headers: ["Cookie": cookie, "X-CSRF-Token": read.string("csrf_token") ?? ""])
            expectProblem(try await app.send(.GET, "v1/auth/session", headers: ["Cookie": cookie]), .unauthorized)
        }
    }
}
