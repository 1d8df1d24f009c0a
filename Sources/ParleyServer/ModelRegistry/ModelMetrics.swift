import NIOConcurrencyHelpers
import Prometheus

/// The models' Prometheus metrics: scoring latency and the score distribution per version,
/// predictions by outcome, and artifacts refused.
final class ModelMetrics: Sendable {
    let registry: PrometheusCollectorRegistry

    private struct Version: Hashable { let model: String; let version: String }
    private struct Outcome: Hashable { let model: String; let version: String; let outcome: String }
    /// Series made once per version (and outcome): scoring is on every message's path, and
    /// this lookup is all it pays once they exist (as `HTTPMetrics` does for requests).
    private let scoring = NIOLockedValueBox<[Version: (DurationHistogram, ValueHistogram)]>([:])
    private let predictions = NIOLockedValueBox<[Outcome: Counter]>([:])
    private struct Drift: Hashable { let model: String; let version: String; let feature: String }
    private let drift = NIOLockedValueBox<[Drift: Gauge]>([:])

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func observeScoring(model: String, version: String, seconds: Double, score: Double) {
        let key = Version(model: model, version: version)
        let (latency, scores) = scoring.withLockedValue { series in
            if let known = series[key] { return known }
            let labels = [("model", model), ("version", version)]
            let made = (
                registry.makeDurationHistogram(
                    descriptor: .init(metricName: "parley_model_scoring_seconds", unitName: "", helpText: "Time to score one text."),
                    labels: labels,
                    buckets: [.microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
                              .milliseconds(1), .milliseconds(5)]),
                registry.makeValueHistogram(
                    descriptor: .init(metricName: "parley_model_score", unitName: "", helpText: "The scores a model gives."),
                    labels: labels, buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
            )
            series[key] = made
            return made
        }
        latency.record(.nanoseconds(Int64(seconds * 1e9)))
        scores.record(score)
    }

    func countPrediction(model: String, version: String, outcome: String) {
        let key = Outcome(model: model, version: version, outcome: outcome)
        let counter = predictions.withLockedValue { series in
            if let known = series[key] { return known }
            let made = registry.makeCounter(
                descriptor: .init(metricName: "parley_model_predictions_total", unitName: "", helpText: "Predictions by model, version and outcome."),
                labels: [("model", model), ("version", version), ("outcome", outcome)])
            series[key] = made
            return made
        }
        counter.increment()
    }

    func countLoadFailure(model: String) {
        registry.makeCounter(
            descriptor: .init(metricName: "parley_model_load_failures_total", unitName: "", helpText: "Model versions refused for a damaged artifact."),
            labels: [("model", model)]
        ).increment()
    }

    /// The PSI of a feature of a served version over its window (see `ModelDrift`).
    func setDrift(model: String, version: String, feature: String, psi: Double) {
        let key = Drift(model: model, version: version, feature: feature)
        let gauge = drift.withLockedValue { series in
            if let known = series[key] { return known }
            let made = registry.makeGauge(
                descriptor: .init(metricName: "parley_model_drift_psi", unitName: "",
                                  helpText: "Population stability index of a feature over the last scored messages, against training."),
                labels: [("model", model), ("version", version), ("feature", feature)])
            series[key] = made
            return made
        }
        gauge.set(psi)
    }

    /// Removes a version's drift gauges (it no longer serves on this node).
    func removeDrift(model: String, version: String) {
        let gone = drift.withLockedValue { series -> [Gauge] in
            let keys = series.keys.filter { $0.model == model && $0.version == version }
            return keys.compactMap { series.removeValue(forKey: $0) }
        }
        for gauge in gone { registry.unregisterGauge(gauge) }
    }
}
