import Foundation
import Testing
import VaporTesting
@testable import ParleyServer

@Suite("Errors as problem+json")
struct ProblemTests {
    @Test("malformed JSON is 400")
    func malformedJSON() async throws {
        try await withParley { app, _ in
            let response = try await app.send(.POST, "v1/auth/register", json: #"{"handle": "ali"#)
            expectProblem(response, .badRequest)
            #expect(response.string("detail")?.contains("not valid JSON") == true)
        }
    }

    @Test("a JSON value that is not an object is 400")
    func notAnObject() async throws {
        try await withParley { app, _ in
            expectProblem(try await app.send(.POST, "v1/auth/login", json: "[1,2,3]"), .badRequest)
        }
    }

    @Test("an unknown route is 404")
    func unknownRoute() async throws {
        try await withParley { app, _ in
            let response = try await app.send(.GET, "v1/nothing-here")
            expectProblem(response, .notFound)
            #expect(response.string("instance") == "/v1/nothing-here")
        }
    }

    @Test("a known path with the wrong method is 405 with Allow")
    func wrongMethod() async throws {
        try await withParley { app, _ in
            let response = try await app.send(.GET, "v1/auth/login")
            expectProblem(response, .methodNotAllowed)
            #expect(response.headers.first(name: .allow) == "POST")
            let me = try await app.send(.DELETE, "v1/me")
            #expect(me.headers.first(name: .allow) == "GET, PATCH")
        }
    }

    @Test("a body that is not JSON is 415")
    func wrongContentType() async throws {
        try await withParley { app, _ in
            var headers = HTTPHeaders()
            headers.contentType = .plainText
            let response = try await app.send(.POST, "v1/auth/login", json: "handle=x", headers: headers)
            expectProblem(response, .unsupportedMediaType)
        }
    }

    @Test("a missing body is 400")
    func missingBody() async throws {
        try await withParley { app, _ in
            expectProblem(try await app.send(.POST, "v1/auth/register"), .badRequest)
        }
    }

    @Test("validation names every bad field at once")
    func everyFieldAtOnce() async throws {
        try await withParley { app, _ in
            let response = try await app.send(.POST, "v1/auth/register",
                                              json: #"{"handle":"Al!ce","display_name":"","email":"nope","password":"short"}"#)
            expectProblem(response, .unprocessableEntity)
            #expect(response.string("type") == "/problems/validation-failed")
            #expect(response.fieldErrors == [
                "handle": "invalid_format", "display_name": "blank", "email": "invalid_format", "password": "too_short",
            ])
        }
    }

    @Test("a field of the wrong type is 422 naming it")
    func wrongType() async throws {
        try await withParley { app, _ in
            let response = try await app.send(.POST, "v1/auth/register", json: #"{"handle":42,"password":"x"}"#)
            expectProblem(response, .unprocessableEntity)
            #expect(response.fieldErrors["handle"] == "invalid_type")
        }
    }

    @Test("no request body content produces a 500")
    func noContentProducesA500() async throws {
        let bodies = [
            "", "null", "true", "0", "\"x\"", "{}", "[]", "{\"handle\":null}", "{\"handle\":{}}",
            "{\"handle\":[],\"password\":[]}", "{\"refresh_token\":1e400}", "{\"handle\":\"\\u0000\"}",
            "{\"handle\":\"" + String(repeating: "a", count: 5000) + "\",\"password\":\"" + String(repeating: "b", count: 5000) + "\"}",
            "{\"email\":\"a@b.c\",\"email\":\"d@e.f\"}", "{\"display_name\":\"\u{1F600}\",\"time_zone\":\"Mars/Base\"}",
            "\u{FEFF}{}", "{\"bio\":" + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}",
        ]
        try await withParley { app, _ in
            let token = try await app.register("fuzzer").string("access_token")
            let targets: [(HTTPMethod, String)] = [
                (.POST, "v1/auth/register"), (.POST, "v1/auth/login"), (.POST, "v1/auth/refresh"),
                (.POST, "v1/auth/session"), (.PATCH, "v1/me"), (.PUT, "v1/me/password"),
            ]
            for (method, path) in targets {
                for body in bodies {
                    let response = try await app.send(method, path, json: body, token: token)
                    #expect(response.status.code < 500, "\(method) \(path) \(body.prefix(40)): \(response.body)")
                    if response.status.code >= 400 { expectProblem(response, response.status) }
                }
            }
        }
    }

    @Test("an oversized body is 413, over a real socket")
    func bodyTooLarge() async throws {
        try await withParley({ $0.maxBodyBytes = 2048 }) { app, _ in
            let body = "{\"handle\":\"" + String(repeating: "a", count: 4096) + "\"}"
            let response = try await app.testing(method: .running(hostname: "127.0.0.1", port: 0))
                .sendRequest(.POST, "v1/auth/login", headers: ["Content-Type": "application/json"], body: ByteBuffer(string: body))
            #expect(response.status == .payloadTooLarge)
            #expect(response.headers.first(name: .contentType)?.hasPrefix("application/problem+json") == true)
        }
    }
}
