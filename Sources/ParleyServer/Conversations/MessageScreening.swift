import Fluent
import Foundation

/// What a screen decides about a message before it is stored (new or edited).
struct ScreeningVerdict: Sendable, Equatable {
    enum Action: String, Sendable {
        /// Store it as usual.
        case allow
        /// Store it visible, and put it before a moderator.
        case flag
        /// Store it visible only to its author until a moderator decides.
        case hold
        /// Refuse it (422 naming the reason); nothing is stored.
        case block
    }

    var action: Action
    /// The score that led to it, and the model version that gave the score.
    var score: Double?
    var model: String?
    /// Why, in words the author is shown when the message is blocked.
    var reason: String?

    /// Nothing looked at the message.
    static let unscreened = ScreeningVerdict(action: .allow)

    init(action: Action, score: Double? = nil, model: String? = nil, reason: String? = nil) {
        self.action = action
        self.score = score
        self.model = model
        self.reason = reason
    }
}

/// The seam where moderation meets sending: every message a person or an assistant sends or
/// edits passes `screen` before the write transaction (so a blocked one takes no seq).
protocol MessageScreening: Sendable {
    func screen(body: String, conversationID: UUID, authorID: UUID, on db: any Database) async throws -> ScreeningVerdict
}

/// A server without moderation: every message is stored as sent.
struct NoScreening: MessageScreening {
    func screen(body: String, conversationID: UUID, authorID: UUID, on db: any Database) async throws -> ScreeningVerdict {
        .unscreened
    }
}
