import Foundation
import Logging
import Testing
@testable import ParleyServer

/// The newest events a node published, kept for the log's followers to read without a
/// statement (SQLite only: there every commit passes the node's write gate in id order).
@Suite("Domain events")
struct DomainEventsTests {
    static func event(_ id: Int) -> CommittedEvent {
        CommittedEvent(id: id, type: .messageCreated, conversationID: UUID(), visibleTo: nil, payload: "{}", createdAt: Date())
    }

    static func ids(_ events: [CommittedEvent]?) -> [Int]? { events.map { $0.map(\.id) } }

    @Test("events after an id come from memory while the next one is held, consecutive and up to the limit; anything else is left to the log")
    func recent() {
        let events = DomainEvents(logger: Logger(label: "test"), recentCapacity: 4)
        #expect(events.recentEvents(after: 0, limit: 10) == nil, "nothing held yet")
        events.publish((1...3).map(Self.event))
        #expect(Self.ids(events.recentEvents(after: 0, limit: 10)) == [1, 2, 3])
        #expect(Self.ids(events.recentEvents(after: 1, limit: 1)) == [2])
        #expect(events.recentEvents(after: 3, limit: 10) == nil, "at the end: the log says whether another process wrote since")
        // An id this node did not publish (4) breaks the run: what follows 3 is not known here.
        events.publish([Self.event(5)])
        #expect(events.recentEvents(after: 3, limit: 10) == nil)
        #expect(Self.ids(events.recentEvents(after: 4, limit: 10)) == [5])
        // Only the newest are kept: past twice the capacity, down to the capacity.
        events.publish((6...14).map(Self.event))
        #expect(events.recentEvents(after: 9, limit: 10) == nil, "trimmed")
        #expect(Self.ids(events.recentEvents(after: 10, limit: 10)) == [11, 12, 13, 14])

        let none = DomainEvents(logger: Logger(label: "test"))
        none.publish((1...3).map(Self.event))
        #expect(none.recentEvents(after: 0, limit: 10) == nil, "no capacity (PostgreSQL): always the log")
    }
}
