import AsyncHTTPClient
import Fluent
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import VaporTesting
@testable import ParleyServer

struct Timeout: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Runs `body`, failing (instead of hanging) if it has not finished after `seconds`. A bound
/// on failure, not a timing assertion: passing runs finish as soon as the work is done.
func within<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw Timeout(what: what) }
        return value
    }
}

/// Takes stored frames (skipping heartbeats) from a stream until `done` says so.
func take(_ frames: AsyncStream<EventFrame>, until done: @escaping @Sendable ([EventFrame]) -> Bool) async throws -> [EventFrame] {
    try await within(30, "event frames") {
        var collected: [EventFrame] = []
        for await frame in frames where frame.id != nil {
            collected.append(frame)
            if done(collected) { return collected }
        }
        return collected
    }
}

extension EventFrame {
    var seq: Int? {
        struct Payload: Decodable { let seq: Int? }
        return (try? JSONDecoder().decode(Payload.self, from: Data(data.utf8)))?.seq
    }
}

@Suite("Real-time events")
struct RealtimeTests {
    static func hub(_ app: Application) throws -> EventHub {
        try #require(app.storage[EventHubKey.self])
    }

    @Test("a member who joins while an ephemeral frame is still reading the same conversation's members keeps getting its events")
    func audienceLoadRace() async throws {
        try await withParley { app, _ in
            // A hub of the test's own, whose first read of a conversation's members waits.
            let loadStarted = Latch(), release = Latch()
            let calls = NIOLockedValueBox(0)
            let db = app.db
            let hub = EventHub(database: { db }, bufferSize: 100, logger: app.logger) { conversation, before, db in
                if calls.withLockedValue({ $0 += 1; return $0 }) == 1 {
                    loadStarted.open()
                    await release.wait()
                }
                return try await EventAudience.members(of: conversation, before: before, on: db)
            }
            let ann = try await app.user("ann")
            let annID = try #require(UUID(uuidString: ann.id))
            let subscription = try await hub.subscribe(userID: annID)  // the hub stands before the conversation
            let conversation = try await app.conversation(ann)
            let conversationID = try #require(UUID(uuidString: conversation))
            // Typing in the new conversation reads its members as of the hub's position, from
            // before Ann joined it; that read is held up...
            let typing = Task {
                await hub.publish(EventFrame(id: nil, type: "typing", conversationID: conversation, data: "{}", at: Date()),
                                  to: conversationID, except: nil)
            }
            await loadStarted.wait()
            // ...while the hub delivers the creation, in which Ann joins.
            hub.notify()
            await hub.delivered(through: try await EventLog.lastID(on: db))
            release.open()
            await typing.value
            // The stale read must not replace what the hub knows now: Ann gets her next message.
            try await app.post("hello", in: conversation, by: ann)
            hub.notify()
            await hub.delivered(through: try await EventLog.lastID(on: db))
            await hub.broadcast(.heartbeat(at: Date()))
            let types = try await within(30, "the heartbeat") {
                var types: [String] = []
                for await frame in subscription.frames {
                    if frame.type == "heartbeat" { break }
                    types.append(frame.type)
                }
                return types
            }
            #expect(types.contains(MemberJoined.type.rawValue))
            #expect(types.contains("message.created"), "\(types)")
        }
    }

    @Test("committed events reach the conversation's members, in order, and nobody else")
    func membersOnly() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben"), eve = try await app.user("eve")
            let id = try await app.conversation(ann, members: [ben])
            let hub = try Self.hub(app)
            let bens = try await hub.subscribe(userID: UUID(uuidString: ben.id)!)
            let eves = try await hub.subscribe(userID: UUID(uuidString: eve.id)!)
            for n in 1...3 { try await app.post("m\(n)", in: id, by: ann) }
            try await app.send(.PUT, "v1/conversations/\(id)/read", json: #"{"seq":3}"#, token: ben.token)

            let frames = try await take(bens.frames) { $0.contains { $0.type == "read.updated" } }
            #expect(frames.map(\.type) == ["message.created", "message.created", "message.created", "read.updated"])
            #expect(frames.compactMap(\.seq) == [1, 2, 3])
            let ids = frames.compactMap(\.id)
            #expect(ids == ids.sorted() && Set(ids).count == ids.count)
            #expect(frames.allSatisfy { $0.conversationID == id })

            // Eve sees nothing of it; her own conversation's event is the first she gets.
            let own = try await app.conversation(eve, title: "Eve's")
            let evesFrames = try await take(eves.frames) { !$0.isEmpty }
            #expect(evesFrames.first?.conversationID == own)
            await hub.unsubscribe(bens.id)
            await hub.unsubscribe(eves.id)
        }
    }

    @Test("replay from `since`, then live, misses nothing and repeats nothing while others keep sending")
    func exactResume() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, members: [ben])
            let benID = UUID(uuidString: ben.id)!
            for n in 1...20 { try await app.post("early \(n)", in: id, by: ann) }
            // The client last saw the event of message 10.
            let seen = try #require(try await Event.query(on: app.db).filter(\.$type == "message.created").sort(\.$id).all()[9].id)

            let sender = Task {
                for n in 21...80 { _ = try await app.post("late \(n)", in: id, by: ann) }
            }
            let hub = try Self.hub(app)
            let subscription = try await hub.subscribe(userID: benID)
            var frames: [EventFrame] = []
            try await EventReplay.replay(userID: benID, after: seen, upTo: subscription.startID, on: app.db) { frames.append($0) }
            let replayed = frames.count
            let already = frames
            frames += try await take(subscription.frames) { live in (already + live).compactMap(\.seq).last == 80 }
            try await sender.value

            #expect(frames.compactMap(\.seq) == Array(11...80), "replayed \(replayed), then live")
            let ids = frames.compactMap(\.id)
            #expect(ids == ids.sorted() && Set(ids).count == ids.count)
            await hub.unsubscribe(subscription.id)
        }
    }

    @Test("a removed member stops receiving at once; a new member starts")
    func membershipChanges() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben"), cat = try await app.user("cat")
            let id = try await app.conversation(ann, members: [ben])
            let hub = try Self.hub(app)
            let bens = try await hub.subscribe(userID: UUID(uuidString: ben.id)!)
            let cats = try await hub.subscribe(userID: UUID(uuidString: cat.id)!)
            try await app.post("before", in: id, by: ann)
            try await app.send(.DELETE, "v1/conversations/\(id)/members/\(ben.id)", token: ann.token)
            try await app.send(.POST, "v1/conversations/\(id)/members", json: #"{"user_id":"\#(cat.id)"}"#, token: ann.token)
            try await app.post("after", in: id, by: ann)

            let benFrames = try await take(bens.frames) { $0.contains { $0.type == "member.left" } }
            #expect(benFrames.map(\.type) == ["message.created", "member.left"])
            let catFrames = try await take(cats.frames) { $0.contains { $0.type == "message.created" } }
            #expect(catFrames.map(\.type) == ["member.joined", "message.created"])
            #expect(catFrames.last?.seq == 2)
            // And Ben got nothing after leaving: the next frame he sees is from a later change of his own.
            let again = try await app.conversation(ben, title: "Ben's")
            #expect(try await take(bens.frames) { !$0.isEmpty }.first?.conversationID == again)
        }
    }

    @Test("the hub routes by membership as it was at each event, even when it reads them late")
    func lateReadsRouteByHistoricMembership() async throws {
        try await withParley { app, context in
            let ann = try await app.user("ann"), ben = try await app.user("ben"), cat = try await app.user("cat")
            let id = try await app.conversation(ann, members: [ben])
            let hub = try Self.hub(app)
            let bens = try await hub.subscribe(userID: UUID(uuidString: ben.id)!)
            let cats = try await hub.subscribe(userID: UUID(uuidString: cat.id)!)

            // Changes the hub is not told about until all four have committed.
            let quiet = ChatDependencies(clock: context.clock.appClock, maxMessageLength: 4000, hooks: .init(), writes: WriteGate(serialize: true))
            let annID = UUID(uuidString: ann.id)!
            let access = try await quiet.conversations(app.db).access(UUID(uuidString: id)!, userID: annID)
            _ = try await quiet.messages(app.db).send(access, try JSONDecoder().decode(SendMessageRequest.self, from: Data(#"{"body":"before"}"#.utf8)),
                                                       authorID: annID, idempotencyKey: nil)
            try await quiet.conversations(app.db).removeMember(access, userID: UUID(uuidString: ben.id)!, by: annID)
            _ = try await quiet.conversations(app.db).addMember(access, try JSONDecoder().decode(AddMemberRequest.self, from: Data(#"{"user_id":"\#(cat.id)"}"#.utf8)))
            _ = try await quiet.messages(app.db).send(try await quiet.conversations(app.db).access(UUID(uuidString: id)!, userID: annID),
                                                       try JSONDecoder().decode(SendMessageRequest.self, from: Data(#"{"body":"after"}"#.utf8)),
                                                       authorID: annID, idempotencyKey: nil)
            hub.notify()

            let benFrames = try await take(bens.frames) { $0.contains { $0.type == "member.left" } }
            #expect(benFrames.map(\.type) == ["message.created", "member.left"])
            #expect(benFrames.first?.seq == 1)
            let catFrames = try await take(cats.frames) { $0.contains { $0.type == "message.created" } }
            #expect(catFrames.map(\.type) == ["member.joined", "message.created"])
            #expect(catFrames.last?.seq == 2)
        }
    }

    @Test("two nodes on one PostgreSQL database: a message sent through one reaches a subscriber of the other",
          .enabled(if: TestDatabase.postgresURL != nil))
    func twoNodes() async throws {
        try await withParley { app, context in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, members: [ben])
            let other = try await Application.make(.testing)
            do {
                try await configure(other, settings: context.settings, clock: context.clock.appClock)
                try await other.asyncBoot()
                let hub = try Self.hub(other)
                let bens = try await hub.subscribe(userID: UUID(uuidString: ben.id)!)
                for n in 1...5 { try await app.post("from node one \(n)", in: id, by: ann) }
                let frames = try await take(bens.frames) { $0.compactMap(\.seq).last == 5 }
                #expect(frames.compactMap(\.seq) == [1, 2, 3, 4, 5])
                await hub.unsubscribe(bens.id)
            } catch {
                try? await other.asyncShutdown()
                throw error
            }
            try await other.asyncShutdown()
        }
    }

    @Test("two nodes on one PostgreSQL database: typing sent through one reaches a member connected to the other, unstored",
          .enabled(if: TestDatabase.postgresURL != nil))
    func typingAcrossNodes() async throws {
        try await withParley { app, context in
            try await app.asyncBoot()
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, members: [ben])
            let other = try await Application.make(.testing)
            do {
                try await configure(other, settings: context.settings, clock: context.clock.appClock)
                try await other.asyncBoot()
                let listeners = try [app, other].map { try #require($0.storage[PostgresEventListenerKey.self]) }
                try await within(60, "both nodes' listeners") {
                    while !listeners.allSatisfy(\.isListening), !Task.isCancelled { await Task.yield() }
                }
                let bens = try await Self.hub(other).subscribe(userID: UUID(uuidString: ben.id)!)
                #expect(try await app.send(.POST, "v1/conversations/\(id)/typing", token: ann.token).status == .noContent)
                let stream = bens.frames
                let typing = try await within(30, "the typing frame") { () -> EventFrame? in
                    for await frame in stream where frame.type == "typing" { return frame }
                    return nil
                }
                let frame = try #require(typing)
                #expect(frame.id == nil)
                #expect(frame.data.contains(ann.id))
                await (try Self.hub(other)).unsubscribe(bens.id)
            } catch {
                try? await other.asyncShutdown()
                throw error
            }
            try await other.asyncShutdown()
        }
    }

    @Test("live delivery and replay agree on who sees each event, through creation, joins and leaves")
    func liveAndReplayAgree() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben"), cat = try await app.user("cat")
            let users = [ann, ben, cat]
            let hub = try Self.hub(app)
            var subscriptions: [EventHub.Subscription] = []
            for user in users { subscriptions.append(try await hub.subscribe(userID: UUID(uuidString: user.id)!)) }
            let start = subscriptions.map(\.startID).min()!

            let id = try await app.conversation(ann, members: [ben])
            try await app.post("one", in: id, by: ann)
            try await app.send(.POST, "v1/conversations/\(id)/members", json: #"{"user_id":"\#(cat.id)"}"#, token: ann.token)
            try await app.post("two", in: id, by: ben)
            try await app.send(.DELETE, "v1/conversations/\(id)/members/\(ben.id)", token: ann.token)
            try await app.post("three", in: id, by: cat)
            let other = try await app.conversation(ben, title: "Ben's")   // the last event: everyone's stream ends before it
            _ = other
            let end = try await EventLog.lastID(on: app.db)

            for (user, subscription) in zip(users, subscriptions) {
                let userID = UUID(uuidString: user.id)!
                let expectsOwn = user.id == ben.id
                let live = try await take(subscription.frames) { frames in
                    expectsOwn ? frames.last?.conversationID == other && frames.last?.type == "conversation.created"
                        : frames.last?.seq == 3 && frames.last?.conversationID == id
                }
                var replayed: [EventFrame] = []
                try await EventReplay.replay(userID: userID, after: start, upTo: end, on: app.db) { replayed.append($0) }
                if !expectsOwn { replayed = Array(replayed.prefix(live.count)) }
                #expect(live.compactMap(\.id) == replayed.compactMap(\.id), "\(user.id): live \(live.map(\.type)) vs replay \(replayed.map(\.type))")
                await hub.unsubscribe(subscription.id)
            }
            // And what each saw makes sense: Ben's own leaving is his last event of it, Cat
            // starts with her joining, everyone saw the conversation being created or joined.
            let bens = try await Self.replayTypes(ben, in: id, after: start, upTo: end, app)
            #expect(bens == ["member.joined", "conversation.created", "message.created", "member.joined", "message.created", "member.left"])
            let cats = try await Self.replayTypes(cat, in: id, after: start, upTo: end, app)
            #expect(cats == ["member.joined", "message.created", "member.left", "message.created"])
        }
    }

    static func replayTypes(_ user: TestUser, in conversation: String, after start: Int, upTo end: Int, _ app: Application) async throws -> [String] {
        var frames: [EventFrame] = []
        try await EventReplay.replay(userID: UUID(uuidString: user.id)!, after: start, upTo: end, on: app.db) { frames.append($0) }
        return frames.filter { $0.conversationID == conversation }.map(\.type)
    }

    /// Returns once the hub has delivered everything committed so far.
    static func settle(_ hub: EventHub, _ app: Application, _ what: String) async throws {
        let last = try await EventLog.lastID(on: app.db)
        try await within(30, what) { await hub.delivered(through: last) }
    }

    @Test("a subscriber that falls behind is cut off instead of growing the server's memory")
    func slowSubscriber() async throws {
        try await withParley({ $0.eventBufferSize = 16 }) { app, _ in
            let ann = try await app.user("ann")
            let id = try await app.conversation(ann)
            let hub = try Self.hub(app)
            let slow = try await hub.subscribe(userID: UUID(uuidString: ann.id)!)
            for n in 1...40 { try await app.post("flood \(n)", in: id, by: ann) }
            // Nothing has read the stream while the hub delivered all forty.
            try await Self.settle(hub, app, "the hub to deliver the flood")
            #expect(await hub.subscriberCount == 0)
            let frames = try await take(slow.frames) { _ in false }   // runs until the stream ends
            #expect(frames.count == 16, "the buffer holds 16 frames, then the stream ends")
        }
    }

    /// A direct subscriber's sink that records what it is given and refuses after `accept` frames.
    final class RecordingSink: FrameSink {
        let accept: Int
        let frames = NIOLockedValueBox<[EventFrame]>([])
        let cut = NIOLockedValueBox(false)
        init(accept: Int = .max) { self.accept = accept }
        func cutOff() { cut.withLockedValue { $0 = true } }
        func write(_ frame: EventFrame) -> Bool {
            frames.withLockedValue { frames in
                guard frames.count < accept else { return false }
                frames.append(frame)
                return true
            }
        }
        var seqs: [Int?] { frames.withLockedValue { $0.filter { $0.id != nil }.map(\.seq) } }
    }

    @Test("a direct subscriber gets the frames held while it replayed, then live ones, each once and in order; a floor skips what it saw")
    func directSubscriber() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let id = try await app.conversation(ann)
            let hub = try Self.hub(app)
            let direct = try await hub.subscribeDirect(userID: UUID(uuidString: ann.id)!)
            for n in 1...3 { try await app.post("held \(n)", in: id, by: ann) }
            try await Self.settle(hub, app, "the hub to hold the three")
            // Seen elsewhere up to the second message: the floor skips it and what came before.
            let second = try #require(try await Event.query(on: app.db).filter(\.$type == "message.created").sort(\.$id).all()[1].id)
            let sink = RecordingSink()
            #expect(await hub.attach(direct.id, sink: sink, floor: second))
            #expect(sink.seqs == [3])
            try await app.post("live", in: id, by: ann)
            try await Self.settle(hub, app, "the hub to deliver")
            #expect(sink.seqs == [3, 4])
            #expect(await !hub.attach(direct.id, sink: sink, floor: 0), "attached once")
            // Shutting down tells a direct subscriber where to resume.
            await hub.finishAll()
            #expect(sink.cut.withLockedValue { $0 })
            #expect(await hub.subscriberCount == 0)
        }
    }

    @Test("a direct subscriber is cut off when too much is held while it replays, or when its sink refuses a frame")
    func directSubscriberFallsBehind() async throws {
        try await withParley({ $0.eventBufferSize = 16 }) { app, _ in
            let ann = try await app.user("ann")
            let id = try await app.conversation(ann)
            let hub = try Self.hub(app)
            let replaying = try await hub.subscribeDirect(userID: UUID(uuidString: ann.id)!)
            let slow = try await hub.subscribeDirect(userID: UUID(uuidString: ann.id)!)
            let refusing = RecordingSink(accept: 2)
            #expect(await hub.attach(slow.id, sink: refusing, floor: slow.startID))
            for n in 1...20 { try await app.post("flood \(n)", in: id, by: ann) }
            try await Self.settle(hub, app, "the hub to deliver the flood")
            #expect(await hub.subscriberCount == 0, "both were cut off")
            #expect(refusing.frames.withLockedValue { $0.count } == 2)
            #expect(await !hub.attach(replaying.id, sink: RecordingSink(), floor: replaying.startID))
        }
    }

    @Test("SSE over a real socket: id lines, replay from Last-Event-ID, then live")
    func serverSentEvents() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, members: [ben])
            for n in 1...3 { try await app.post("m\(n)", in: id, by: ann) }
            let second = try #require(try await Event.query(on: app.db).filter(\.$type == "message.created").sort(\.$id).all()[1].id)

            try await app.asyncBoot()
            try await app.server.start(address: .hostname("127.0.0.1", port: 0))
            let port = try #require(app.http.server.shared.localAddress?.port)
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/events/stream")
                request.headers.add(name: "Authorization", value: "Bearer \(ben.token)")
                request.headers.add(name: "Last-Event-ID", value: String(second))
                let response = try await client.execute(request, timeout: .seconds(30))
                #expect(response.status == .ok)
                #expect(response.headers.first(name: "Content-Type")?.hasPrefix("text/event-stream") == true)
                let poster = Task { try await app.post("live", in: id, by: ann) }
                let text = try await within(30, "SSE frames") {
                    var text = ""
                    for try await chunk in response.body {
                        text += String(buffer: chunk)
                        if text.contains("\"seq\":4") { break }
                    }
                    return text
                }
                _ = try await poster.value
                let events = text.components(separatedBy: "\n\n").filter { $0.contains("data: ") }
                #expect(events.count == 2, "message 3 by replay, message 4 live: \(text)")
                #expect(events.first?.hasPrefix("id: \(second + 1)\nevent: message.created\ndata: {") == true)
                #expect(events.allSatisfy { $0.contains("\"type\":\"message.created\"") && $0.contains("\"conversation_id\":\"\(id)\"") })
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
            await app.server.shutdown()
        }
    }

    @Test("a WebSocket with the session cookie opens from the server's own origin, not from another site's page",
          arguments: [("https://evil.example", false), ("http://127.0.0.1:PORT", true), ("https://chat.example.com", true), (nil, true)])
    func crossSiteWebSocket(origin: String?, opens: Bool) async throws {
        try await withParley({ $0.allowedOrigins = ["https://chat.example.com"] }) { app, _ in
            _ = try await app.user("ann")
            let signIn = try await app.send(.POST, "v1/auth/session", json: #"{"handle":"ann","password":"correct horse battery"}"#)
            let cookie = try #require(signIn.headers.first(name: .setCookie)?.split(separator: ";").first.map(String.init))
            try await app.asyncBoot()
            try await app.server.start(address: .hostname("127.0.0.1", port: 0))
            let port = try #require(app.http.server.shared.localAddress?.port)
            var headers: HTTPHeaders = ["Cookie": cookie]
            if let origin { headers.add(name: .origin, value: origin.replacingOccurrences(of: "PORT", with: String(port))) }
            let outcome: Result<WebSocket, any Error>
            do {
                let headers = headers
                outcome = .success(try await within(30, "the WebSocket handshake") {
                    try await withCheckedThrowingContinuation { (connected: CheckedContinuation<WebSocket, any Error>) in
                        WebSocket.connect(to: "ws://127.0.0.1:\(port)/v1/events", headers: headers, on: MultiThreadedEventLoopGroup.singleton) { ws in
                            connected.resume(returning: ws)
                        }.whenFailure { connected.resume(throwing: $0) }
                    }
                })
            } catch {
                outcome = .failure(error)
            }
            switch outcome {
            case .success(let socket):
                #expect(opens, "a page on \(origin ?? "no origin") opened a WebSocket with the user's cookie")
                try await socket.close()
            case .failure(let error):
                #expect(!opens, "\(error)")
            }
            // The same upgrade with a bearer token opens from anywhere: a token is not sent by browsers on their own.
            let token = try #require(try await app.send(.POST, "v1/auth/login", json: #"{"handle":"ann","password":"correct horse battery"}"#).string("access_token"))
            let bearer = try await within(30, "the bearer handshake") {
                try await withCheckedThrowingContinuation { (connected: CheckedContinuation<WebSocket, any Error>) in
                    WebSocket.connect(to: "ws://127.0.0.1:\(port)/v1/events", headers: ["Authorization": "Bearer \(token)", "Origin": "https://evil.example"],
                                      on: MultiThreadedEventLoopGroup.singleton) { ws in connected.resume(returning: ws) }
                        .whenFailure { connected.resume(throwing: $0) }
                }
            }
            try await bearer.close()
            await app.server.shutdown()
        }
    }

    @Test("WebSocket over a real socket: replay from since, then live")
    func webSocket() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, members: [ben])
            try await app.post("first", in: id, by: ann)
            let first = try #require(try await Event.query(on: app.db).filter(\.$type == "message.created").first()?.id)
            try await app.post("second", in: id, by: ann)

            try await app.asyncBoot()
            try await app.server.start(address: .hostname("127.0.0.1", port: 0))
            let port = try #require(app.http.server.shared.localAddress?.port)
            let (texts, continuation) = AsyncStream<String>.makeStream()
            let socket = try await within(30, "the WebSocket handshake") {
                try await withCheckedThrowingContinuation { (connected: CheckedContinuation<WebSocket, any Error>) in
                    WebSocket.connect(to: "ws://127.0.0.1:\(port)/v1/events?since=\(first)",
                                      headers: ["Authorization": "Bearer \(ben.token)"],
                                      on: MultiThreadedEventLoopGroup.singleton) { ws in
                        ws.onText { _, text in continuation.yield(text) }
                        connected.resume(returning: ws)
                    }.whenFailure { connected.resume(throwing: $0) }
                }
            }
            let poster = Task { try await app.post("third", in: id, by: ann) }
            let received = try await within(30, "WebSocket frames") {
                var out: [[String: Any]] = []
                for await text in texts {
                    guard let frame = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else { continue }
                    if frame["id"] == nil { continue }
                    out.append(frame)
                    if out.count == 2 { break }
                }
                return out.map { ($0["data"] as? [String: Any])?["seq"] as? Int }
            }
            _ = try await poster.value
            #expect(received == [2, 3])
            try await socket.close()
            await app.server.shutdown()
        }
    }

    /// Starts the server on a free port and returns it.
    static func serve(_ app: Application) async throws -> Int {
        try await app.asyncBoot()
        try await app.server.start(address: .hostname("127.0.0.1", port: 0))
        return try #require(app.http.server.shared.localAddress?.port)
    }

    /// Opens the SSE stream and returns only its status, leaving it open until `client` shuts down.
    static func openStream(_ client: HTTPClient, port: Int, query: String, token: String? = nil) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/events/stream?\(query)")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        return try await client.execute(request, timeout: .seconds(30))
    }

    @Test("a ticket opens a stream once, within 30 seconds, without a token in the URL")
    func tickets() async throws {
        try await withParley { app, context in
            let ann = try await app.user("ann")
            let issued = try await app.send(.POST, "v1/events/ticket", token: ann.token)
            #expect(issued.status == .created)
            #expect(issued["expires_in"] as? Int == 30)
            let ticket = try #require(issued.string("ticket"))
            let late = try #require(try await app.send(.POST, "v1/events/ticket", token: ann.token).string("ticket"))
            expectProblem(try await app.send(.POST, "v1/events/ticket"), .unauthorized)

            let port = try await Self.serve(app)
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                #expect(try await Self.openStream(client, port: port, query: "ticket=\(ticket)").status == .ok)
                #expect(try await Self.openStream(client, port: port, query: "ticket=\(ticket)").status == .unauthorized, "a ticket works once")
                #expect(try await Self.openStream(client, port: port, query: "ticket=forged").status == .unauthorized)
                context.clock.advance(by: 31)
                #expect(try await Self.openStream(client, port: port, query: "ticket=\(late)").status == .unauthorized, "30 seconds, no more")
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
            await app.server.shutdown()
        }
    }

    @Test("a user over the connection cap gets 429, over SSE and on a WebSocket upgrade")
    func connectionCap() async throws {
        try await withParley({ $0.maxConnectionsPerUser = 2 }) { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let port = try await Self.serve(app)
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                // Both streams stay open (their responses are held) while the third is tried.
                let first = try await Self.openStream(client, port: port, query: "", token: ann.token)
                let second = try await Self.openStream(client, port: port, query: "", token: ann.token)
                #expect(first.status == .ok && second.status == .ok)
                #expect(try await Self.openStream(client, port: port, query: "", token: ann.token).status == .tooManyRequests)
                #expect(try await Self.openStream(client, port: port, query: "", token: ben.token).status == .ok, "the cap is per user")
                // A WebSocket upgrade over the cap is answered, not dropped.
                var upgrade = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/events")
                upgrade.headers.add(name: "Authorization", value: "Bearer \(ann.token)")
                upgrade.headers.add(name: "Connection", value: "Upgrade")
                upgrade.headers.add(name: "Upgrade", value: "websocket")
                upgrade.headers.add(name: "Sec-WebSocket-Version", value: "13")
                upgrade.headers.add(name: "Sec-WebSocket-Key", value: "dGhlIHNhbXBsZSBub25jZQ==")
                let refused = try await client.execute(upgrade, timeout: .seconds(30))
                #expect(refused.status == .tooManyRequests)
                #expect(refused.headers.first(name: "Content-Type")?.hasPrefix("application/problem+json") == true)
                #expect(refused.headers.first(name: "Retry-After") == "5")
                withExtendedLifetime((first, second)) {}
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
            await app.server.shutdown()
        }
    }

    @Test("typing reaches the other members as an ephemeral frame, never stored")
    func typing() async throws {
        try await withParley { app, context in
            let ann = try await app.user("ann"), ben = try await app.user("ben"), eve = try await app.user("eve")
            let id = try await app.conversation(ann, members: [ben])
            let hub = try Self.hub(app)
            let bens = try await hub.subscribe(userID: UUID(uuidString: ben.id)!)
            #expect(try await app.send(.POST, "v1/conversations/\(id)/typing", token: ann.token).status == .noContent)
            expectProblem(try await app.send(.POST, "v1/conversations/\(id)/typing", token: eve.token), .notFound)
            let frame = try await within(30, "a typing frame") { () -> EventFrame? in
                for await frame in bens.frames where frame.type == "typing" { return frame }
                return nil
            }
            #expect(frame?.id == nil)
            #expect(frame?.conversationID == id)
            #expect(frame?.data.contains(ann.id) == true)
            let expires = context.clock.now.addingTimeInterval(5).formatted(.iso8601)
            #expect(frame?.data.contains(expires) == true)
            #expect(try await Event.query(on: app.db).filter(\.$type == "typing").count() == 0)
            await hub.unsubscribe(bens.id)
        }
    }

    @Test("the stream needs a signed-in caller and a sane `since`")
    func badInput() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            expectProblem(try await app.send(.GET, "v1/events/stream"), .unauthorized)
            expectProblem(try await app.send(.GET, "v1/events/stream?since=-4", token: ann.token), .unprocessableEntity)
            expectProblem(try await app.send(.GET, "v1/events/stream?since=abc", token: ann.token), .unprocessableEntity)
            expectProblem(try await app.send(.GET, "v1/events"), .unauthorized)
        }
    }
}
