import Fluent
import Foundation

/// A notification in words, for places outside the app (a push, an e-mail digest): who did
/// what, and the client's link to it.
struct NotificationSummary: Sendable, Equatable {
    var title: String
    var excerpt: String?
    /// The web client's route, such as `/#/c/<conversation>/m/<seq>`.
    var path: String

    static func of(_ notification: NotificationDTO, on db: any Database) async throws -> NotificationSummary {
        var actor: User?
        if let actorID = notification.actorID.flatMap(UUID.init(wire:)) { actor = try await User.find(actorID, on: db) }
        let who = actor.map { $0.displayName.isEmpty ? "@" + $0.handle : $0.displayName } ?? "Parley"
        let title = switch notification.kind {
        case .mention: "\(who) mentioned you"
        case .direct: who
        case .threadReply: "\(who) replied in a thread"
        case .message: "\(who) wrote"
        case .approval: "\(who) asks for your approval"
        }
        let route = notification.messageSeq.map { "#/c/\(notification.conversationID)/m/\($0)" } ?? "#/c/\(notification.conversationID)"
        return NotificationSummary(title: title, excerpt: notification.excerpt, path: "/" + route)
    }
}
