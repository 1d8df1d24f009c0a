import AgentGraph
import Foundation
import NIOConcurrencyHelpers
import Vapor

/// A real HTTP server on 127.0.0.1 that answers `/v1/chat/completions` and `/v1/messages` as a test tells it,
/// and remembers what it was sent.
final class FakeProvider: Sendable {
    enum Answer: Sendable {
        case json(HTTPStatus, String, headers: [(String, String)] = [])
        /// Server-Sent Events: each string is one `data:` payload; `done` appends `[DONE]`.
        case events([String], done: Bool)
    }

    let app: Application
    let port: Int
    private let answers = NIOLockedValueBox<[Answer]>([])
    private let received = NIOLockedValueBox<[(headers: HTTPHeaders, body: JSONValue)]>([])

    var baseURL: String { "http://127.0.0.1:\(port)/v1" }
    var root: String { "http://127.0.0.1:\(port)" }
    var requests: [(headers: HTTPHeaders, body: JSONValue)] { received.withLockedValue { $0 } }

    func answer(_ answers: Answer...) {
        self.answers.withLockedValue { $0.append(contentsOf: answers) }
    }

    static func start() async throws -> FakeProvider {
        let app = try await Application.make(.testing)
        app.logger.logLevel = .warning
        let holder = NIOLockedValueBox<FakeProvider?>(nil)
        let handler: @Sendable (Request) async throws -> Response = { request in
            guard let provider = holder.withLockedValue({ $0 }) else { throw Abort(.serviceUnavailable) }
            return try await provider.respond(request)
        }
        // OpenAI's route, and Anthropic's.
        app.post("v1", "chat", "completions", use: handler)
        app.post("v1", "messages", use: handler)
        try await app.server.start(address: .hostname("127.0.0.1", port: 0))
        guard let port = app.http.server.shared.localAddress?.port else { throw Abort(.internalServerError, reason: "no port") }
        let provider = FakeProvider(app: app, port: port)
        holder.withLockedValue { $0 = provider }
        return provider
    }

    private init(app: Application, port: Int) {
        self.app = app
        self.port = port
    }

    func stop() async throws {
        await app.server.shutdown()
        try await app.asyncShutdown()
    }

    private func respond(_ request: Request) async throws -> Response {
        let body = try JSONDecoder().decode(JSONValue.self, from: Data(buffer: request.body.data ?? ByteBuffer()))
        received.withLockedValue { $0.append((request.headers, body)) }
        let answer = answers.withLockedValue { $0.isEmpty ? nil : $0.removeFirst() }
        switch answer {
        case nil:
            return Response(status: .internalServerError, body: .init(string: #"{"error":{"message":"no answer scripted"}}"#))
        case .json(let status, let text, let extra):
            var headers: HTTPHeaders = ["Content-Type": "application/json"]
            for (name, value) in extra { headers.add(name: name, value: value) }
            return Response(status: status, headers: headers, body: .init(string: text))
        case .events(let payloads, let done):
            let response = Response(status: .ok, headers: ["Content-Type": "text/event-stream"])
            response.body = .init(managedAsyncStream: { writer in
                for payload in payloads { try await writer.write(.buffer(ByteBuffer(string: "data: \(payload)\n\n"))) }
                if done { try await writer.write(.buffer(ByteBuffer(string: "data: [DONE]\n\n"))) }
            })
            return response
        }
    }
}

extension FakeProvider {
    /// Starts a provider, builds the client under test against it, runs `body`, and stops
    /// the provider whether `body` passes or throws.
    static func with<Model: Sendable>(_ makeModel: (FakeProvider) -> Model,
                                      _ body: (FakeProvider, Model) async throws -> Void) async throws {
        let provider = try await FakeProvider.start()
        do {
            try await body(provider, makeModel(provider))
        } catch {
            try? await provider.stop()
            throw error
        }
        try await provider.stop()
    }
}
