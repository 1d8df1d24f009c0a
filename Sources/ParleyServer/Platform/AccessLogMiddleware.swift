import NIOConcurrencyHelpers
import Prometheus
import Vapor

/// One JSON log line and one metrics sample per request: time, request id, method, route
/// pattern, status, duration and user id. Never headers, bodies or query strings, which can
/// hold secrets.
struct AccessLogMiddleware: AsyncMiddleware {
    let metrics: HTTPMetrics
    let logger: Logger

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let clock = ContinuousClock()
        let start = clock.now
        let response: Response
        do {
            response = try await next.respond(to: request)
        } catch {
            response = ProblemMiddleware.response(for: error, request: request)
        }
        let elapsed = clock.now - start
        // The route pattern (`/v1/users/:id`), never the raw path, keeps label cardinality bounded.
        let route = request.route.map { "/" + $0.path.map(\.description).joined(separator: "/") } ?? "unmatched"
        metrics.record(method: request.method.rawValue, route: route, status: response.status.code, duration: elapsed)

        var metadata: Logger.Metadata = [
            "request_id": .string(request.requestID),
            "method": .string(request.method.rawValue),
            "route": .string(route),
            "status": .stringConvertible(Int(response.status.code)),
            "duration_ms": .stringConvertible(Self.milliseconds(elapsed)),
        ]
        if let principal = request.auth.get(Principal.self) {
            metadata["user_id"] = .string(principal.userID.wire)
        }
        logger.info("request", metadata: metadata)
        return response
    }

    static func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        let ms = Double(seconds) * 1000 + Double(attoseconds) / 1e15
        return (ms * 1000).rounded() / 1000
    }
}
