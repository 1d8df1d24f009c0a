import Fluent
import Foundation
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

/// Collects what `RealtimeController.feed` sends, until `done` says so.
func feedFrames(userID: UUID, since: Int?, subscription: EventHub.Subscription, on db: any Database,
                until done: @escaping @Sendable ([EventFrame]) -> Bool) async throws -> [EventFrame] {
    try await within(30, "feed frames") {
        let (stream, continuation) = AsyncStream<EventFrame>.makeStream()
        let feeding = Task {
            try await RealtimeController.feed(userID: userID, since: since, subscription: subscription, on: db) { continuation.yield($0) }
            continuation.finish()
        }
        defer { feeding.cancel() }
        var frames: [EventFrame] = []
        for await frame in stream where frame.type != "heartbeat" {
            frames.append(frame)
            if done(frames) { break }
        }
        return frames
    }
}

@Suite("Event retention and resync")
struct RetentionTests {
    static func retention(_ app: Application, batch: Int = 5_000) throws -> EventRetention {
        var retention = try #require(app.storage[EventRetentionKey.self])
        retention.batchSize = batch
        return retention
    }

    static func messageEventIDs(_ app: Application) async throws -> [Int] {
        try await Event.query(on: app.db).filter(\.$type == "message.created").sort(\.$id).all().compactMap(\.id)
    }

    @Test("pruning deletes only events older than the window, in batches, records how far it cut; maintenance drops expired tickets")
    func prune() async throws {
        try await withParley { app, context in
            let ann = try await app.user("ann")
            let id = try await app.conversation(ann)
            for n in 1...7 { try await app.post("old \(n)", in: id, by: ann) }
            let old = try await Self.messageEventIDs(app)
            try await app.send(.POST, "v1/events/ticket", token: ann.token)
            context.clock.advance(by: 8 * 24 * 3600)
            // (Ann's access token has expired by now.)
            let ben = try await app.user("ben")
            try await app.post("new", in: try await app.conversation(ben), by: ben)

            let deleted = try await Self.retention(app, batch: 3).prune(on: app.db)
            #expect(deleted == old.count + 2, "the conversation's creation, its owner's joining and the seven old messages")
            let maintenance = try #require(app.storage[MaintenanceKey.self])
            let tidied = await maintenance.run(on: app.db, logger: app.logger)
            #expect(tidied["event tickets"] == 1)
            let left = try await Event.query(on: app.db).all()
            #expect(left.map(\.type) == ["member.joined", "conversation.created", "message.created"])
            #expect(try await EventTicket.query(on: app.db).count() == 0)
            let sql = try #require(app.db as? any SQLDatabase)
            struct Row: Decodable { let pruned_through: Int }
            let horizon = try #require(try await sql.raw("SELECT pruned_through FROM event_horizon").first(decoding: Row.self))
            #expect(horizon.pruned_through == old.last)
            // Nothing more to do the second time.
            #expect(try await Self.retention(app).prune(on: app.db) == 0)
        }
    }

    @Test("a cursor older than the window gets one resync_required, then live frames; a cursor inside it replays")
    func resync() async throws {
        try await withParley { app, context in
            let ann = try await app.user("ann")
            for n in 1...3 { try await app.post("old \(n)", in: try await app.conversation(ann), by: ann) }
            let old = try await Self.messageEventIDs(app)
            context.clock.advance(by: 8 * 24 * 3600)
            let ben = try await app.user("ben")
            let benID = try #require(UUID(uuidString: ben.id))
            let id = try await app.conversation(ben)
            try await app.post("kept", in: id, by: ben)
            try await Self.retention(app).prune(on: app.db)
            let hub = try RealtimeTests.hub(app)

            // Stale: the events after this cursor are gone.
            let stale = try await hub.subscribe(userID: benID)
            let poster = Task { try await app.post("live", in: id, by: ben) }
            let frames = try await feedFrames(userID: benID, since: old[0], subscription: stale, on: app.db) { $0.count == 2 }
            _ = try await poster.value
            #expect(frames.map(\.type) == ["resync_required", "message.created"])
            #expect(frames[0].id == nil && frames[0].data == #"{"since":\#(stale.startID)}"#)
            #expect(frames[0].sse().hasPrefix("id: \(stale.startID)\nevent: resync_required\n"), "EventSource resumes from there")
            #expect(frames[1].seq == 2)
            await hub.unsubscribe(stale.id)

            // Exactly at the cut: everything after it is still stored, so it replays.
            let fresh = try await hub.subscribe(userID: benID)
            let replayed = try await feedFrames(userID: benID, since: old.last!, subscription: fresh, on: app.db) { $0.count == 4 }
            #expect(replayed.map(\.type) == ["member.joined", "conversation.created", "message.created", "message.created"])
            #expect(replayed.compactMap(\.seq) == [1, 2])
            await hub.unsubscribe(fresh.id)

            // A cursor from the future (another database) is stale too.
            let future = try await hub.subscribe(userID: benID)
            let poster2 = Task { try await app.post("later", in: id, by: ben) }
            let odd = try await feedFrames(userID: benID, since: 1_000_000, subscription: future, on: app.db) { $0.count == 2 }
            _ = try await poster2.value
            #expect(odd.map(\.type) == ["resync_required", "message.created"])
            await hub.unsubscribe(future.id)
        }
    }

    @Test("a client that saw newer events on another node gets none of them twice from a hub that lags behind")
    func laggingHub() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let annID = try #require(UUID(uuidString: ann.id))
            let id = try await app.conversation(ann)
            for n in 1...5 { try await app.post("m\(n)", in: id, by: ann) }
            let ids = try await Self.messageEventIDs(app)
            let events = try await EventLog.events(after: 0, limit: 10_000, on: app.db).filter { ids.contains($0.id) }
            // A hub that has delivered up to message 2 when the client, which saw message 4
            // elsewhere, connects: its live stream still carries messages 3, 4 and 5.
            let (frames, continuation) = AsyncStream<EventFrame>.makeStream()
            for event in events.dropFirst(2) { continuation.yield(EventFrame(event)) }
            continuation.finish()
            let lagging = EventHub.Subscription(id: UUID(), startID: ids[1], frames: frames)
            let sent = try await feedFrames(userID: annID, since: ids[3], subscription: lagging, on: app.db) { _ in false }
            #expect(sent.compactMap(\.seq) == [5])
        }
    }

    @Test("PARLEY_EVENT_RETENTION is read in seconds and checked")
    func setting() throws {
        #expect(try Settings.load(from: ["PARLEY_EVENT_RETENTION": "86400"]).eventRetention == .seconds(86_400))
        #expect(throws: SettingsError.self) { try Settings.load(from: ["PARLEY_EVENT_RETENTION": "60"]) }
    }
}
