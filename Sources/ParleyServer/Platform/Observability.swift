import NIOConcurrencyHelpers
import Prometheus
import Vapor

/// The Prometheus registry and the HTTP metrics recorded into it.
final class HTTPMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    /// Latency buckets, seconds: 0.5 ms … 10 s.
    static let buckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    private struct Key: Hashable {
        let method: String
        let route: String
        let status: UInt
    }

    /// The collectors of each (method, route, status) seen so far. The registry would find them
    /// again itself, but only after validating and escaping every name and label on each call;
    /// this lookup is all a request pays once its series exists.
    private let series = NIOLockedValueBox<[Key: (Counter, DurationHistogram)]>([:])

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func record(method: String, route: String, status: UInt, duration: Duration) {
        let key = Key(method: method, route: route, status: status)
        let (counter, histogram) = series.withLockedValue { series in
            if let known = series[key] { return known }
            let labels = [("method", method), ("route", route), ("status", String(status))]
            let made = (
                registry.makeCounter(
                    descriptor: .init(metricName: "parley_http_requests_total", helpText: "HTTP requests answered, by route pattern, method and status."),
                    labels: labels),
                registry.makeDurationHistogram(
                    descriptor: .init(metricName: "parley_http_request_duration_seconds", helpText: "HTTP request latency, by route pattern, method and status."),
                    labels: labels, buckets: Self.buckets)
            )
            series[key] = made
            return made
        }
        counter.increment()
        histogram.record(duration)
    }
}

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
            metadata["user_id"] = .string(principal.userID.uuidString.lowercased())
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

/// Sets headers every response should carry.
struct SecurityHeadersMiddleware: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let response = try await next.respond(to: request)
        let headers: [(String, String)] = [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
        ]
        for (name, value) in headers where !response.headers.contains(name: name) {
            response.headers.add(name: name, value: value)
        }
        if request.url.path.hasPrefix("/v1/"), !response.headers.contains(name: .cacheControl) {
            response.headers.replaceOrAdd(name: .cacheControl, value: "no-store")
        }
        return response
    }
}
