import Foundation

/// A change a feature records in the outbox, inside the transaction that makes it.
///
/// Its encoding is the event's `data`, both in the log and on the wire; `type` is its name.
/// After the transaction commits, the event reaches this node's subscribers (`DomainEvents`)
/// with the id the log gave it, and stays readable from the log (`EventLog.events(after:)`).
protocol DomainEvent: Codable, Sendable {
    static var type: EventType { get }
}

/// A recorded event as subscribers and readers of the log get it.
struct CommittedEvent: Sendable, Equatable {
    /// The event's position in the log: increasing in commit order.
    let id: Int
    let type: EventType
    let conversationID: UUID
    /// Set when only this user may see the event (their read marker, for example).
    let visibleTo: UUID?
    /// The event's data, as JSON text.
    let payload: String
    let createdAt: Date

    /// The typed event, when it is one of `E`; nil for another type.
    func decode<E: DomainEvent>(_: E.Type) throws -> E? {
        guard type == E.type else { return nil }
        return try EventLog.decoder.decode(E.self, from: Data(payload.utf8))
    }
}
