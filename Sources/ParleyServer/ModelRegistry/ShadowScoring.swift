import Fluent
import Foundation
import Vapor

/// A shadow version scores the messages production scores, with no effect on them: a durable
/// follower of the event log (named `shadow`) scores each new message with the deployed
/// shadow and with production, off the send path, and keeps both scores for the comparison
/// report (`ShadowScore`). With no shadow deployed a batch calls for nothing.
enum ShadowScoring {
    static let model = ModerationScreening.model
    /// How long scores are kept.
    static let retention: TimeInterval = 30 * 24 * 3600
    /// A held message's `message.created` carries no text; its `message.held` (for the author)
    /// carries all of it.
    static let types: Set<EventType> = [.messageCreated, .messageHeld]

    static func follower(serving: ModelServing, database: @escaping @Sendable () throws -> any Database, writes: WriteGate,
                         domainEvents: DomainEvents, clock: AppClock, logger: Logger) -> LogFollower {
        LogFollower(name: "shadow", types: types, database: database, writes: writes, domainEvents: domainEvents,
                    logger: logger) { events, _ in
            plan(events, serving: serving, now: clock.now())
        }
    }

    /// The scores a batch calls for: none without a shadow (and production) deployed.
    ///
    /// Every node plans each batch (one of them writes it), so each scores the batch's
    /// messages with both versions. Only messages sent since the shadow took its stage count:
    /// with no shadow a batch moves the cursor in memory only, so after a restart a node reads
    /// older messages again, and those must not enter a later shadow's comparison.
    static func plan(_ events: [CommittedEvent], serving: ModelServing, now: Date) -> LogFollower.Writes? {
        guard let shadow = serving.shadow(for: model), let production = serving.production(for: model) else { return nil }
        var scores: [ShadowScore.New] = []
        for event in events where event.createdAt >= shadow.since {
            guard let message = try? EventLog.decoder.decode(MessageDTO.self, from: Data(event.payload.utf8)),
                  let body = message.body, !body.isEmpty, let messageID = UUID(wire: message.id),
                  // A held message's text is in its `message.held`, sent or edited: only new ones count.
                  event.type == .messageHeld ? message.editedAt == nil : message.moderation?.state != .held
            else { continue }
            scores.append(.init(model: model, shadowVersion: shadow.label, productionVersion: production.label, messageID: messageID,
                                conversationID: event.conversationID,
                                productionScore: production.classifier.predictProbability(body),
                                shadowScore: serving.score(body, with: shadow, model: model)))
        }
        guard !scores.isEmpty else { return nil }
        return { [scores] tx, _ in try await ShadowScore.insert(scores, at: now, on: tx) }
    }
}

struct ShadowFollowerKey: StorageKey {
    typealias Value = LogFollower
}
