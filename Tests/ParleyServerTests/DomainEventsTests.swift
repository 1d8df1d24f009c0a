import Foundation
import Logging
import SQLKit
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

    @Test("a reader this node's commit woke, already at the newest event held, is answered empty from memory; a gap still sends it to the log")
    func emptyAtEnd() {
        let events = DomainEvents(logger: Logger(label: "test"), recentCapacity: 4)
        events.publish((1...3).map(Self.event))
        #expect(Self.ids(events.recentEvents(after: 3, limit: 10, emptyAtEnd: true)) == [])
        #expect(Self.ids(events.recentEvents(after: 2, limit: 10, emptyAtEnd: true)) == [3])
        events.publish([Self.event(5)])
        #expect(events.recentEvents(after: 3, limit: 10, emptyAtEnd: true) == nil, "4 was written elsewhere")
        #expect(Self.ids(events.recentEvents(after: 5, limit: 10, emptyAtEnd: true)) == [])
        let none = DomainEvents(logger: Logger(label: "test"))
        none.publish((1...3).map(Self.event))
        #expect(none.recentEvents(after: 3, limit: 10, emptyAtEnd: true) == nil, "no capacity: always the log")
    }

    @Test("an event another process commits is found by a polling read, and by a woken read once this node commits after it")
    func anotherWriter() async throws {
        try await withParley { app, _ in
            guard app.settings.database.isSQLite else { return }  // PostgreSQL holds nothing.
            let events = try #require(app.storage[DomainEventsKey.self])
            let ann = try await app.user("ann")
            let conversation = try await app.conversation(ann)
            #expect(try await app.post("mine", in: conversation, by: ann).status == .created)
            let newest = try await EventLog.lastID(on: app.db)
            #expect(try await events.events(after: newest, on: app.db, woken: true).isEmpty)
            // Another process's commit: straight into the log, past this node's gate.
            try await app.db.transaction { tx in
                _ = try await EventLog.append(type: .messageCreated, conversationID: try #require(UUID(uuidString: conversation)),
                                              visibleTo: nil, payload: "{}", at: Date(), firstInTransaction: true, on: tx)
            }
            #expect(try await events.events(after: newest, on: app.db, woken: true).isEmpty, "not yet known here")
            #expect(try await events.events(after: newest, on: app.db, woken: false).map(\.id) == [newest + 1], "the poll reads the log")
            #expect(try await app.post("after", in: conversation, by: ann).status == .created)
            let woken = try await events.events(after: newest, on: app.db, woken: true)
            #expect(woken.first?.id == newest + 1, "this node's next commit leaves a gap in what it holds, so the log is read")
            #expect(woken.count >= 2)
        }
    }
}
