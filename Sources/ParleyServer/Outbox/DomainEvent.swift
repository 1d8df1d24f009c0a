import Foundation

/// A change a feature records in the outbox, inside the transaction that makes it.
///
/// Its encoding is the event's `data`, both in the log and on the wire; `type` is its name.
/// After the transaction commits, the event reaches this node's subscribers (`DomainEvents`)
/// with the id the log gave it, and stays readable from the log (`EventLog.events(after:)`).
protocol DomainEvent: Codable, Sendable {
    static var type: EventType { get }
}
