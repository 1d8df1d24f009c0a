import Foundation
import NIOConcurrencyHelpers
import Prometheus

/// The assistants in Prometheus: model requests by provider, model and outcome; tokens;
/// time to first token; cost; run durations and outcomes; budget refusals; citations.
/// (Queue depth is the job queue's `parley_jobs{queue="assistant.run"}`.)
struct AssistantMetrics: Sendable {
    let registry: PrometheusCollectorRegistry

    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
    ]

    func modelRequest(provider: String, model: String, outcome: String, firstToken: Duration?, usage: (prompt: Int, completion: Int), cost: Double) {
        let labels = [("provider", provider), ("model", model)]
        registry.makeCounter(
            descriptor: .init(metricName: "parley_model_requests_total", unitName: "", helpText: "Requests to models, by provider, model and outcome."),
            labels: labels + [("outcome", outcome)]).increment()
        if let firstToken {
            registry.makeDurationHistogram(
                descriptor: .init(metricName: "parley_model_time_to_first_token_seconds", unitName: "", helpText: "From a model request to its first streamed piece."),
                labels: labels, buckets: Self.latencyBuckets).record(firstToken)
        }
        for (kind, count) in [("prompt", usage.prompt), ("completion", usage.completion)] where count > 0 {
            registry.makeCounter(
                descriptor: .init(metricName: "parley_model_tokens_total", unitName: "", helpText: "Tokens used, by provider, model and kind (prompt, completion)."),
                labels: labels + [("kind", kind)]).increment(by: Int64(count))
        }
        if cost > 0 {
            registry.makeCounter(
                descriptor: .init(metricName: "parley_model_cost_dollars_total", unitName: "", helpText: "Estimated spend on models in US dollars, from the price table."),
                labels: labels).increment(by: cost)
        }
    }

    func runFinished(status: String, duration: Duration) {
        registry.makeCounter(
            descriptor: .init(metricName: "parley_assistant_runs_total", unitName: "", helpText: "Assistant runs finished, by final status."),
            labels: [("status", status)]).increment()
        registry.makeDurationHistogram(
            descriptor: .init(metricName: "parley_assistant_run_duration_seconds", unitName: "", helpText: "From a run's creation to its end, approval waits included."),
            labels: [("status", status)], buckets: Self.latencyBuckets).record(duration)
    }

    func budgetRefused(scope: String) {
        registry.makeCounter(
            descriptor: .init(metricName: "parley_assistant_budget_refusals_total", unitName: "", helpText: "Model calls refused by a daily token budget, by scope."),
            labels: [("scope", scope)]).increment()
    }

    func citations(valid: Int, dropped: Int) {
        let counter = { (outcome: String) in
            registry.makeCounter(
                descriptor: .init(metricName: "parley_assistant_citations_total", unitName: "", helpText: "Citations in replies, kept (valid) or dropped (no such message, or not visible to the asker)."),
                labels: [("outcome", outcome)])
        }
        if valid > 0 { counter("valid").increment(by: Int64(valid)) }
        if dropped > 0 { counter("dropped").increment(by: Int64(dropped)) }
    }
}

/// The runs executing on this node, so a cancel that arrives here stops one at once.
final class RunRegistry: Sendable {
    private let running = NIOLockedValueBox<[UUID: @Sendable () -> Void]>([:])

    func register(_ id: UUID, cancel: @escaping @Sendable () -> Void) {
        running.withLockedValue { $0[id] = cancel }
    }

    func unregister(_ id: UUID) {
        _ = running.withLockedValue { $0.removeValue(forKey: id) }
    }

    func cancel(_ id: UUID) {
        running.withLockedValue { $0[id] }?()
    }

    /// A run the dispatcher created running on this node, with the assistant's configuration
    /// as it read it in the same pass.
    struct HandOff: @unchecked Sendable {
        let run: AssistantRun
        let assistant: Assistant
    }

    private let handOffs = NIOLockedValueBox<[UUID: HandOff]>([:])

    /// Leaves `run` for this node's executor, which starts it when its job commits.
    func handOff(_ run: AssistantRun, _ assistant: Assistant) {
        guard let id = run.id else { return }
        handOffs.withLockedValue { handOffs in
            // Hand-offs whose transaction rolled back are never taken: keep the map bounded.
            if handOffs.count > 1_000 { handOffs.removeAll() }
            handOffs[id] = HandOff(run: run, assistant: assistant)
        }
    }

    func takeHandOff(_ id: UUID) -> HandOff? {
        handOffs.withLockedValue { $0.removeValue(forKey: id) }
    }
}
