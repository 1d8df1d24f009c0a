import Fluent
import Foundation
import SQLKit
import Vapor

/// One node's presence news for other nodes: its status for some users (`offline` included,
/// so a node can say a user left it). `hello` asks every other node to repeat its whole list
/// (a node that has just started knows nobody).
struct PresenceBatch: Codable, Sendable, Equatable {
    var node: UUID
    var users: [String: PresenceStatus]
    var hello: Bool?
}
