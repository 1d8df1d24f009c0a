import Fluent
import Prometheus
import SQLKit
import Vapor

/// Liveness, readiness, metrics and the API contract.
struct HealthController: RouteCollection {
    let metrics: HTTPMetrics
    let openAPIDocument: ByteBuffer?

    func boot(routes: any RoutesBuilder) throws {
        routes.get("healthz", use: health)
        routes.get("readyz", use: ready)
        routes.get("metrics", use: exportMetrics)
        routes.get("openapi.yaml", use: openAPI)
    }

    struct Status: Content {
        var status: String
        var database: String?
        var pendingMigrations: [String]?

        enum CodingKeys: String, CodingKey {
            case status, database
            case pendingMigrations = "pending_migrations"
        }
    }

    /// The process is alive and serving HTTP.
    @Sendable
    func health(_ request: Request) async throws -> Status {
        Status(status: "ok")
    }

    /// The database answers and every migration is applied; 503 otherwise.
    @Sendable
    func ready(_ request: Request) async throws -> Response {
        let status: Status
        let code: HTTPResponseStatus
        do {
            guard let sql = request.db as? any SQLDatabase else { throw ProblemError(.internalServerError) }
            try await sql.raw("SELECT 1").run()
            let pending = try await DatabaseSetup.pendingMigrations(request.application)
            status = Status(status: pending.isEmpty ? "ok" : "unavailable", database: "ok", pendingMigrations: pending)
            code = pending.isEmpty ? .ok : .serviceUnavailable
        } catch {
            request.logger.warning("readiness check failed", metadata: ["error": .string(String(describing: type(of: error)))])
            status = Status(status: "unavailable", database: "unreachable")
            code = .serviceUnavailable
        }
        return try await status.encodeResponse(status: code, for: request)
    }

    /// Prometheus text exposition.
    @Sendable
    func exportMetrics(_ request: Request) async throws -> Response {
        var buffer: [UInt8] = []
        metrics.registry.emit(into: &buffer)
        var headers = HTTPHeaders()
        headers.contentType = HTTPMediaType(type: "text", subType: "plain", parameters: ["version": "0.0.4", "charset": "utf-8"])
        return Response(status: .ok, headers: headers, body: .init(buffer: ByteBuffer(bytes: buffer)))
    }

    @Sendable
    func openAPI(_ request: Request) async throws -> Response {
        guard let openAPIDocument else { throw ProblemError.notFound("The OpenAPI document is not bundled with this build.") }
        var headers = HTTPHeaders()
        headers.contentType = HTTPMediaType(type: "application", subType: "yaml", parameters: ["charset": "utf-8"])
        return Response(status: .ok, headers: headers, body: .init(buffer: openAPIDocument))
    }
}
