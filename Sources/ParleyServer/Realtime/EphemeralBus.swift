import Fluent
import Foundation
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// Ephemeral frames for the members of a conversation (typing, assistants' token deltas):
/// delivered to this node's connections at once and, on PostgreSQL, to every other node with
/// `pg_notify('parley_ephemeral', …)` (not stored; a node that is not listening misses them,
/// as a client that is not connected does).
final class EphemeralBus: Sendable {
    static let channel = "parley_ephemeral"

    private let hub: EventHub
    /// This node, so it ignores its own notifications.
    let node: String
    private let remote = NIOLockedValueBox<(@Sendable (String) async throws -> Void)?>(nil)
    private let logger: Logger

    init(hub: EventHub, node: String, logger: Logger) {
        self.hub = hub
        self.node = node
        self.logger = logger
    }

    /// Sends to other nodes through `send` (PostgreSQL's NOTIFY).
    func connect(_ send: @escaping @Sendable (String) async throws -> Void) {
        remote.withLockedValue { $0 = send }
    }

    struct Note: Codable, Sendable {
        var node: String
        var conversationID: UUID
        var except: UUID?
        var type: String
        var data: String
        var at: Date
    }

    func publish(_ frame: EventFrame, to conversationID: UUID, except excluded: UUID? = nil) async {
        await hub.publish(frame, to: conversationID, except: excluded)
        guard let send = remote.withLockedValue({ $0 }) else { return }
        let note = Note(node: node, conversationID: conversationID, except: excluded, type: frame.type, data: frame.data, at: frame.at)
        do {
            try await send(String(decoding: try EventLog.encoder.encode(note), as: UTF8.self))
        } catch {
            logger.debug("could not pass an ephemeral frame to other nodes", metadata: ["error": .string(String(describing: error))])
        }
    }

    /// A notification from another node.
    func receive(_ payload: String) async {
        guard let note = try? EventLog.decoder.decode(Note.self, from: Data(payload.utf8)), note.node != node else { return }
        let frame = EventFrame(id: nil, type: note.type, conversationID: note.conversationID.wire, data: note.data, at: note.at)
        await hub.publish(frame, to: note.conversationID, except: note.except)
    }

    static func postgresSender(databases: Databases, eventLoops: any EventLoopGroup, logger: Logger) -> @Sendable (String) async throws -> Void {
        { payload in
            guard let sql = databases.database(logger: logger, on: eventLoops.any()) as? any SQLDatabase else { return }
            try await sql.raw("SELECT pg_notify(\(bind: channel), \(bind: payload))").run()
        }
    }
}
