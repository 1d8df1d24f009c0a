import Foundation

/// What the registry advises about a model's deployed versions, and why, from their live
/// metrics (moderators' decisions on the messages each version scored) and from drift.
///
/// - A production version whose live F1 is below its predecessor's: roll back.
/// - A canary whose live F1 is below production's: archive it; at or above: promote it.
/// - Production's drift at or above the alert threshold: retrain.
///
/// Live metrics are only compared when both versions have at least ``minimumReviewed``
/// reviewed messages; until then the API shows the counts and advises nothing.
struct ModelAdvice: Codable, Sendable, Equatable {
    enum Action: String, Codable, Sendable { case rollback, archive, promote, retrain }

    var action: Action
    /// The version the advice is about (`moderation@4`).
    var version: String
    var reason: String

    static let minimumReviewed = 20

    struct Version: Sendable {
        let id: UUID
        let label: String
        let stage: ModelVersion.Stage
        let previousID: UUID?
    }

    static func advise(_ versions: [Version], live: [String: LiveOutcomes], drift: ModelDrift.Report?) -> [ModelAdvice] {
        var advice: [ModelAdvice] = []
        let production = versions.first { $0.stage == .production }
        if let production, let previous = versions.first(where: { $0.id == production.previousID }),
           let comparison = compare(production.label, with: previous.label, live: live), comparison.worse {
            advice.append(.init(action: .rollback, version: production.label,
                                reason: "\(comparison.text) (the version it replaced); rolling back restores \(previous.label)"))
        }
        if let production, let canary = versions.first(where: { $0.stage == .canary }),
           let comparison = compare(canary.label, with: production.label, live: live) {
            advice.append(comparison.worse
                ? .init(action: .archive, version: canary.label, reason: comparison.text + " (production)")
                : .init(action: .promote, version: canary.label, reason: comparison.text + " (production)"))
        }
        if let drift, drift.alert, drift.version == production?.label {
            let shifted = drift.features.filter { ($0.psi ?? 0) >= drift.threshold }
                .map { "\($0.feature) PSI \(format($0.psi ?? 0))" }.joined(separator: ", ")
            advice.append(.init(action: .retrain, version: drift.version,
                                reason: "\(shifted) over the last \(drift.window) messages on this node, at or above \(format(drift.threshold)): "
                                    + "messages no longer look like the training data"))
        }
        return advice
    }

    private static func compare(_ label: String, with other: String, live: [String: LiveOutcomes]) -> (worse: Bool, text: String)? {
        guard let mine = live[label], let theirs = live[other], mine.reviewed >= minimumReviewed, theirs.reviewed >= minimumReviewed,
              let f1 = mine.f1, let otherF1 = theirs.f1 else { return nil }
        let relation = f1 < otherF1 ? "below" : (f1 == otherF1 ? "equal to" : "above")
        return (f1 < otherF1, "\(label)'s live F1 is \(format(f1)) over \(mine.reviewed) reviewed messages (precision \(format(mine.precision))), "
                + "\(relation) \(other)'s \(format(otherF1)) over \(theirs.reviewed) (precision \(format(theirs.precision)))")
    }

    private static func format(_ value: Double?) -> String {
        value.map { String(format: "%.2f", $0) } ?? "n/a"
    }
}
