import Fluent
import Foundation
import NIOConcurrencyHelpers
import Prometheus
import Vapor

/// The job queue in Prometheus: jobs per queue and state, the age of the oldest due job per
/// queue, and finished attempts per queue and outcome.
final class JobMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private struct Series: Hashable { let queue: String; let state: String }
    private let depths = NIOLockedValueBox<[Series: Gauge]>([:])
    private let ages = NIOLockedValueBox<[String: Gauge]>([:])
    private let outcomes = NIOLockedValueBox<[Series: Counter]>([:])

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// Reads the queue's depths and sets the gauges; queues and states that emptied read 0.
    func refresh(database: @Sendable () throws -> any Database, now: Date, logger: Logger) async {
        do {
            record(try await JobQueue.depths(at: now, on: database()), now: now)
        } catch {
            logger.debug("could not read the job queue's depth", metadata: ["error": .string(String(describing: error))])
        }
    }

    func record(_ rows: [JobQueue.Depth], now: Date) {
        var counts: [Series: Int] = [:]
        var oldest: [String: Date] = [:]
        for row in rows {
            counts[Series(queue: row.queue, state: row.state.rawValue)] = row.count
            if let due = row.oldestDue { oldest[row.queue] = min(oldest[row.queue] ?? due, due) }
        }
        depths.withLockedValue { gauges in
            for series in Set(gauges.keys).union(counts.keys) {
                let gauge = gauges[series] ?? registry.makeGauge(
                    descriptor: .init(metricName: "parley_jobs", unitName: "", helpText: "Jobs on the queue, by queue and state."),
                    labels: [("queue", series.queue), ("state", series.state)])
                gauges[series] = gauge
                gauge.set(Double(counts[series] ?? 0))
            }
        }
        let queues = Set(rows.map(\.queue))
        ages.withLockedValue { gauges in
            for queue in Set(gauges.keys).union(queues) {
                let gauge = gauges[queue] ?? registry.makeGauge(
                    descriptor: .init(metricName: "parley_jobs_oldest_due_age_seconds",
                                      unitName: "", helpText: "How long the oldest due job of a queue has waited for a worker (0 when none waits)."),
                    labels: [("queue", queue)])
                gauges[queue] = gauge
                gauge.set(oldest[queue].map { max(0, now.timeIntervalSince($0)) } ?? 0)
            }
        }
    }

    func finished(queue: String, outcome: String) {
        let series = Series(queue: queue, state: outcome)
        let counter = outcomes.withLockedValue { counters in
            if let known = counters[series] { return known }
            let made = registry.makeCounter(
                descriptor: .init(metricName: "parley_job_attempts_total", unitName: "", helpText: "Finished job attempts, by queue and outcome."),
                labels: [("queue", queue), ("outcome", outcome)])
            counters[series] = made
            return made
        }
        counter.increment()
    }
}
