import Prometheus

/// The models' Prometheus metrics: scoring latency and the score distribution per version,
/// predictions by outcome, and artifacts refused.
struct ModelMetrics: Sendable {
    let registry: PrometheusCollectorRegistry

    func observeScoring(model: String, version: String, seconds: Double, score: Double) {
        registry.makeDurationHistogram(
            descriptor: .init(metricName: "parley_model_scoring_seconds", unitName: "", helpText: "Time to score one text."),
            labels: [("model", model), ("version", version)],
            buckets: [.microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
                      .milliseconds(1), .milliseconds(5)]
        ).record(.nanoseconds(Int64(seconds * 1e9)))
        registry.makeValueHistogram(
            descriptor: .init(metricName: "parley_model_score", unitName: "", helpText: "The scores a model gives."),
            labels: [("model", model), ("version", version)],
            buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
        ).record(score)
    }

    func countPrediction(model: String, version: String, outcome: String) {
        registry.makeCounter(
            descriptor: .init(metricName: "parley_model_predictions_total", unitName: "", helpText: "Predictions by model, version and outcome."),
            labels: [("model", model), ("version", version), ("outcome", outcome)]
        ).increment()
    }

    func countLoadFailure(model: String) {
        registry.makeCounter(
            descriptor: .init(metricName: "parley_model_load_failures_total", unitName: "", helpText: "Model versions refused for a damaged artifact."),
            labels: [("model", model)]
        ).increment()
    }
}
