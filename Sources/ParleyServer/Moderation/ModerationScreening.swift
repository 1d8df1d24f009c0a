import Fluent
import Foundation

/// Moderation's side of the `MessageScreening` seam: the deployed `moderation` model scores
/// the message (its canary for a stable share of conversations), and the conversation's
/// policy, or else the site's, turns the score into an action. With no model in production
/// every message is allowed, unscored.
struct ModerationScreening: MessageScreening {
    static let model = "moderation"

    let serving: ModelServing
    let metrics: ModelMetrics?

    func screen(body: String, conversationID: UUID, authorID: UUID, on db: any Database) async throws -> ScreeningVerdict {
        guard let version = serving.scorer(for: Self.model, conversationID: conversationID) else { return .unscreened }
        let score = serving.score(body, with: version, model: Self.model)
        let (site, override) = try await ModerationPolicy.thresholds(for: conversationID, on: db)
        let action = (override ?? site).action(for: score)
        metrics?.countPrediction(model: Self.model, version: version.label, outcome: action.rawValue)
        let reason = action == .block
            ? "The moderation model scored this message \(String(format: "%.2f", score)), at or above this conversation's block threshold."
            : nil
        return ScreeningVerdict(action: action, score: score, model: version.label, reason: reason)
    }
}
