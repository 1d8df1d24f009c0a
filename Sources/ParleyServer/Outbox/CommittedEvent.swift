import Foundation

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
