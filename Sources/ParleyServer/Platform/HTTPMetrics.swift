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
                    descriptor: .init(metricName: "parley_http_requests_total", unitName: "", helpText: "HTTP requests answered, by route pattern, method and status."),
                    labels: labels),
                registry.makeDurationHistogram(
                    descriptor: .init(metricName: "parley_http_request_duration_seconds", unitName: "", helpText: "HTTP request latency, by route pattern, method and status."),
                    labels: labels, buckets: Self.buckets)
            )
            series[key] = made
            return made
        }
        counter.increment()
        histogram.record(duration)
    }
}
