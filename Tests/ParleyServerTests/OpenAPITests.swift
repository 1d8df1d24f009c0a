import Foundation
import Testing
import VaporTesting
import Yams
@testable import ParleyServer

@Suite("OpenAPI contract")
struct OpenAPITests {
    static func document() throws -> [String: Any] {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("openapi.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        return try #require(try Yams.load(yaml: text) as? [String: Any])
    }

    /// `(method, path)` pairs, with path parameters written `{name}`.
    static func documented() throws -> Set<String> {
        let paths = try #require(try document()["paths"] as? [String: Any])
        var out = Set<String>()
        for (path, item) in paths {
            for method in (item as? [String: Any] ?? [:]).keys
            where ["get", "put", "post", "delete", "patch", "head", "options"].contains(method) {
                out.insert("\(method.uppercased()) \(path)")
            }
        }
        return out
    }

    @Test("every registered route is documented and every documented path is registered")
    func routesMatchDocument() async throws {
        try await withParley { app, _ in
            let routes = Set(app.routes.all.map { route in
                let path = "/" + route.path.map { component -> String in
                    switch component {
                    case .parameter(let name): "{\(name)}"
                    default: component.description
                    }
                }.joined(separator: "/")
                return "\(route.method.rawValue) \(path)"
            })
            // The web client's assets (`/assets/<version>/<any path>`) are a catch-all that an
            // OpenAPI path cannot express; the page that loads them, `/`, is documented.
            let registered = routes.filter { !$0.hasPrefix("GET /assets/") }
            let documented = try Self.documented()
            #expect(registered.subtracting(documented).sorted() == [], "registered but not documented")
            #expect(documented.subtracting(registered).sorted() == [], "documented but not registered")
        }
    }

    @Test("the document is OpenAPI 3.1 and is served at /openapi.yaml")
    func served() async throws {
        #expect(try Self.document()["openapi"] as? String == "3.1.0")
        try await withParley { app, _ in
            let response = try await app.testing().sendRequest(.GET, "openapi.yaml")
            #expect(response.status == .ok)
            let url = URL(fileURLWithPath: #filePath)
                .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("openapi.yaml")
            #expect(response.body.string == (try String(contentsOf: url, encoding: .utf8)))
        }
    }

    @Test("every operation documents its errors as problem+json")
    func errorsDocumented() throws {
        let paths = try #require(try Self.document()["paths"] as? [String: Any])
        for (path, item) in paths {
            for (method, operation) in item as? [String: Any] ?? [:]
            where ["get", "put", "post", "delete", "patch"].contains(method) {
                guard let responses = (operation as? [String: Any])?["responses"] as? [String: Any] else {
                    Issue.record("\(method) \(path) has no responses")
                    continue
                }
                #expect(responses.keys.contains { $0.hasPrefix("2") || $0.hasPrefix("3") || $0 == "101" }, "\(method) \(path) has no success response")
                if path.hasPrefix("/v1/") {
                    #expect(responses.keys.contains { $0.hasPrefix("4") }, "\(method) \(path) documents no 4xx")
                }
            }
        }
    }
}
