import Fluent
import Foundation
import NIOCore
import NIOPosix
import Testing
import VaporTesting
@testable import ParleyServer

/// The next frame of `type` (or of any of `types`), skipping heartbeats.
func nextFrame(_ frames: AsyncStream<EventFrame>, _ types: Set<String>) async throws -> EventFrame {
    let frame = try await within(30, "a frame of type \(types.sorted())") { () -> EventFrame? in
        for await frame in frames where types.contains(frame.type) { return frame }
        return nil
    }
    return try #require(frame, "the stream ended")
}

extension EventFrame {
    /// A `presence.snapshot` frame's statuses by user id.
    var snapshot: [String: String]? {
        guard type == "presence.snapshot" else { return nil }
        struct Entry: Decodable { let user_id: String; let status: String }
        struct Payload: Decodable { let users: [Entry] }
        return (try? JSONDecoder().decode(Payload.self, from: Data(data.utf8))).map {
            Dictionary(uniqueKeysWithValues: $0.users.map { ($0.user_id, $0.status) })
        }
    }

    var presence: (user: String, status: String)? {
        guard type == "presence" else { return nil }
        struct Payload: Decodable { let user_id: String; let status: String }
        return (try? JSONDecoder().decode(Payload.self, from: Data(data.utf8))).map { ($0.user_id, $0.status) }
    }
}

@Suite("Presence")
struct PresenceTests {
    static func presence(_ app: Application) throws -> Presence {
        try #require(app.storage[PresenceKey.self])
    }

    @Test("a WebSocket makes its user online to the people they share a conversation with; away, back, and offline when it closes")
    func overWebSocket() async throws {
        try await withParley({ $0.presenceGrace = .zero }) { app, context in
            let ann = try await app.user("ann"), ben = try await app.user("ben"), eve = try await app.user("eve")
            _ = try await app.conversation(ann, members: [ben])
            let hub = try RealtimeTests.hub(app)
            let anns = try await hub.subscribe(userID: UUID(uuidString: ann.id)!)
            let eves = try await hub.subscribe(userID: UUID(uuidString: eve.id)!)
            let port = try await RealtimeTests.serve(app)
            do {
                try await Self.webSocketChecks(app, port: port, clock: context.clock, ann: ann, ben: ben, eve: eve, anns: anns, eves: eves)
            } catch {
                await app.server.shutdown()
                throw error
            }
            await app.server.shutdown()
        }
    }

    static func webSocketChecks(_ app: Application, port: Int, clock: TestClock, ann: TestUser, ben: TestUser, eve: TestUser,
                                anns: EventHub.Subscription, eves: EventHub.Subscription) async throws {
        do {

            let socket = try await within(30, "the WebSocket handshake") {
                try await withCheckedThrowingContinuation { (connected: CheckedContinuation<WebSocket, any Error>) in
                    WebSocket.connect(to: "ws://127.0.0.1:\(port)/v1/events", headers: ["Authorization": "Bearer \(ben.token)"],
                                      on: MultiThreadedEventLoopGroup.singleton) { ws in connected.resume(returning: ws) }
                        .whenFailure { connected.resume(throwing: $0) }
                }
            }
            var frame = try await nextFrame(anns.frames, ["presence"])
            #expect(frame.presence?.user == ben.id && frame.presence?.status == "online")
            #expect(frame.id == nil && frame.conversationID == nil)

            let listing = try await app.send(.GET, "v1/presence", token: ann.token)
            #expect(listing.status == .ok)
            #expect(listing.object["enabled"] as? Bool == true)
            #expect((listing.object["users"] as? [[String: Any]])?.map { $0["user_id"] as? String } == [ben.id])
            #expect((listing.object["users"] as? [[String: Any]])?.first?["status"] as? String == "online")
            let evesView = try await app.send(.GET, "v1/presence", token: eve.token)
            #expect((evesView.object["users"] as? [Any])?.isEmpty == true, "Eve shares no conversation with Ben")

            try await socket.send(#"{"type":"presence","status":"away"}"#)
            // One announcement a second at most: move the clock past it.
            clock.advance(by: 1)
            frame = try await nextFrame(anns.frames, ["presence"])
            #expect(frame.presence?.status == "away")
            try await socket.send(#"{"type":"presence","status":"online"}"#)
            // One announcement a second at most: move the clock past it.
            clock.advance(by: 1)
            frame = try await nextFrame(anns.frames, ["presence"])
            #expect(frame.presence?.status == "online")
            try await socket.close()
            // One announcement a second at most: move the clock past it.
            clock.advance(by: 1)
            frame = try await nextFrame(anns.frames, ["presence"])
            #expect(frame.presence?.status == "offline")

            // Eve heard none of it: the first thing she gets is her own conversation.
            let own = try await app.conversation(eve, title: "Eve's")
            #expect(try await nextFrame(eves.frames, ["presence", "conversation.created", "member.joined"]).conversationID == own)
        }
    }

    @Test("a client that drops and reconnects within the grace period is never shown offline, however often it flaps")
    func flapping() async throws {
        try await withParley({ $0.presenceGrace = .seconds(3600) }) { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, members: [ben])
            let benID = UUID(uuidString: ben.id)!
            let hub = try RealtimeTests.hub(app), presence = try Self.presence(app)
            let anns = try await hub.subscribe(userID: UUID(uuidString: ann.id)!)
            var connection = await presence.connect(userID: benID)
            #expect(try await nextFrame(anns.frames, ["presence"]).presence?.status == "online")
            for _ in 1...50 {
                await presence.disconnect(connection, userID: benID)
                connection = await presence.connect(userID: benID)
            }
            // The next frame Ann gets is the typing sent after all that, not a presence change.
            try await app.send(.POST, "v1/conversations/\(id)/typing", token: ben.token)
            #expect(try await nextFrame(anns.frames, ["presence", "typing"]).type == "typing")
        }
    }

    @Test("presence switched off: no frames, and the listing says so")
    func switchedOff() async throws {
        try await withParley({ $0.presenceEnabled = false }) { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, members: [ben])
            let hub = try RealtimeTests.hub(app), presence = try Self.presence(app)
            let anns = try await hub.subscribe(userID: UUID(uuidString: ann.id)!)
            _ = await presence.connect(userID: UUID(uuidString: ben.id)!)
            try await app.send(.POST, "v1/conversations/\(id)/typing", token: ben.token)
            #expect(try await nextFrame(anns.frames, ["presence", "typing"]).type == "typing")
            let listing = try await app.send(.GET, "v1/presence", token: ann.token)
            #expect(listing.object["enabled"] as? Bool == false)
            #expect(try Settings.load(from: ["PARLEY_PRESENCE": "false"]).presenceEnabled == false)
            #expect(throws: SettingsError.self) { try Settings.load(from: ["PARLEY_PRESENCE": "maybe"]) }
            #expect(try Settings.load(from: ["PARLEY_PRESENCE_GRACE": "30"]).presenceGrace == .seconds(30))
            #expect(throws: SettingsError.self) { try Settings.load(from: ["PARLEY_PRESENCE_GRACE": "-1"]) }
            #expect(throws: SettingsError.self) { try Settings.load(from: ["PARLEY_PRESENCE_GRACE": "soon"]) }
        }
    }

    @Test("presence is pushed through conversations up to the push limit; in bigger ones a subscriber hears only whom it asked for, starting with their status now")
    func pushLimitAndWatching() async throws {
        try await withParley({ $0.presenceGrace = .zero; $0.presencePushLimit = 3 }) { app, context in
            let ann = try await app.user("ann"), ben = try await app.user("ben"), cat = try await app.user("cat")
            let dan = try await app.user("dan"), eve = try await app.user("eve")
            let big = try await app.conversation(ann, title: "All hands", members: [ben, cat, dan])
            _ = try await app.conversation(ann, title: "Pair", members: [cat])
            let benID = UUID(uuidString: ben.id)!, catID = UUID(uuidString: cat.id)!
            let hub = try RealtimeTests.hub(app), presence = try Self.presence(app)
            let anns = try await hub.subscribe(userID: UUID(uuidString: ann.id)!)

            // Cat shares a conversation of 2 with Ann: pushed. Ben shares only the one of 4: not.
            _ = await presence.connect(userID: catID)
            let catOnline = try await nextFrame(anns.frames, ["presence"])
            #expect(catOnline.presence?.user == cat.id && catOnline.presence?.status == "online")
            let bens = await presence.connect(userID: benID)
            try await within(30, "Ben online") {
                while await presence.statuses(of: [benID]).isEmpty, !Task.isCancelled { await Task.yield() }
            }
            let benOnline = EventFrame(id: nil, type: "presence", conversationID: nil,
                                       data: #"{"user_id":"\#(ben.id)","status":"online"}"#, at: context.clock.now)
            await hub.publish(benOnline, toPeersOf: benID, inConversationsUpTo: 3)
            try await app.send(.POST, "v1/conversations/\(big)/typing", token: dan.token)
            #expect(try await nextFrame(anns.frames, ["presence", "typing"]).type == "typing", "Ben's online was not pushed")

            // The listing says what is pushed; by name it covers any shared conversation.
            var listing = try await app.send(.GET, "v1/presence", token: ann.token)
            #expect(listing.object["push_limit"] as? Int == 3)
            #expect((listing.object["users"] as? [[String: Any]])?.map { $0["user_id"] as? String } == [cat.id])
            listing = try await app.send(.GET, "v1/presence?user_ids=\(ben.id),\(eve.id)", token: ann.token)
            #expect((listing.object["users"] as? [[String: Any]])?.map { $0["user_id"] as? String } == [ben.id],
                    "Eve shares no conversation with Ann")
            let junk = try await app.send(.GET, "v1/presence?user_ids=\(ben.id),nobody", token: ann.token)
            #expect(junk.status == .unprocessableEntity)
            #expect((junk.object["errors"] as? [[String: Any]])?.first?["field"] as? String == "user_ids")
            let many = (0...Presence.Options.watchLimit).map { _ in UUID().uuidString }.joined(separator: ",")
            #expect(try await app.send(.GET, "v1/presence?user_ids=\(many)", token: ann.token).status == .unprocessableEntity)

            // Ann watches Ben and Dan by name: their status now in one frame, then Ben's changes.
            await presence.watch([benID, UUID(uuidString: dan.id)!], subscriber: anns.id, sequence: 2)
            let snapshot = try await nextFrame(anns.frames, ["presence", "presence.snapshot"])
            #expect(snapshot.type == "presence.snapshot")
            #expect(snapshot.snapshot == [ben.id: "online", dan.id: "offline"])
            await presence.disconnect(bens, userID: benID)
            context.clock.advance(by: 1)
            let frame = try await nextFrame(anns.frames, ["presence"])
            #expect(frame.presence?.user == ben.id && frame.presence?.status == "offline")

            // A list asked for earlier but checked later is not applied over the newer one.
            await presence.watch([], subscriber: anns.id, sequence: 1)
            await hub.publish(benOnline, toPeersOf: benID, inConversationsUpTo: 3)
            #expect(try await nextFrame(anns.frames, ["presence", "presence.snapshot"]).presence?.status == "online", "still watched")
            // An empty list ends the watch: Ben's changes are no longer heard.
            await presence.watch([], subscriber: anns.id, sequence: 3)
            #expect(try await nextFrame(anns.frames, ["presence.snapshot"]).snapshot == [:])
            await hub.publish(benOnline, toPeersOf: benID, inConversationsUpTo: 3)
            try await app.send(.POST, "v1/conversations/\(big)/typing", token: dan.token)
            #expect(try await nextFrame(anns.frames, ["presence", "typing"]).type == "typing", "Ben is no longer watched")
            #expect(try Settings.load(from: ["PARLEY_PRESENCE_PUSH_LIMIT": "500"]).presencePushLimit == 500)
            #expect(throws: SettingsError.self) { try Settings.load(from: ["PARLEY_PRESENCE_PUSH_LIMIT": "1"]) }
        }
    }

    @Test("over a WebSocket, presence.subscribe names whom to hear of: only people the client shares a conversation with, and a bad list gets an error frame")
    func subscribeOverWebSocket() async throws {
        try await withParley({ $0.presenceGrace = .zero; $0.presencePushLimit = 2 }) { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben"), cat = try await app.user("cat")
            let eve = try await app.user("eve")
            _ = try await app.conversation(ann, title: "Trio", members: [ben, cat])
            let presence = try Self.presence(app)
            _ = await presence.connect(userID: UUID(uuidString: ben.id)!)
            _ = await presence.connect(userID: UUID(uuidString: eve.id)!)
            let port = try await RealtimeTests.serve(app)
            let (texts, received) = AsyncStream<String>.makeStream()
            do {
                let socket = try await within(30, "the WebSocket handshake") {
                    try await withCheckedThrowingContinuation { (connected: CheckedContinuation<WebSocket, any Error>) in
                        WebSocket.connect(to: "ws://127.0.0.1:\(port)/v1/events", headers: ["Authorization": "Bearer \(ann.token)"],
                                          on: MultiThreadedEventLoopGroup.singleton) { ws in
                            ws.onText { _, text in received.yield(text) }
                            connected.resume(returning: ws)
                        }.whenFailure { connected.resume(throwing: $0) }
                    }
                }
                func next(_ types: Set<String>) async throws -> [String: Any] {
                    let text = try await within(30, "a frame of type \(types.sorted())") { () -> String? in
                        for await text in texts {
                            guard let frame = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
                                  let type = frame["type"] as? String, types.contains(type) else { continue }
                            return text
                        }
                        return nil
                    }
                    let frame = try JSONSerialization.jsonObject(with: Data(try #require(text, "the socket closed").utf8))
                    return try #require(frame as? [String: Any])
                }
                try await socket.send(#"{"type":"presence.subscribe","user_ids":["\#(ben.id)","not an id"]}"#)
                let refused = try await next(["error", "presence"])
                #expect(refused["type"] as? String == "error")
                #expect((refused["data"] as? [String: Any])?["field"] as? String == "user_ids")
                #expect((refused["data"] as? [String: Any])?["code"] as? String == "invalid")
                // Eve is online but shares nothing with Ann: only Ben's status comes back.
                try await socket.send(#"{"type":"presence.subscribe","user_ids":["\#(eve.id)","\#(ben.id)"]}"#)
                let status = try await next(["error", "presence", "presence.snapshot"])
                #expect(status["type"] as? String == "presence.snapshot")
                let users = ((status["data"] as? [String: Any])?["users"] as? [[String: Any]]) ?? []
                #expect(users.map { $0["user_id"] as? String } == [ben.id] && users.first?["status"] as? String == "online")
                // A new list replaces it: Cat's status, not Eve's.
                try await socket.send(#"{"type":"presence.subscribe","user_ids":["\#(eve.id)","\#(cat.id)"]}"#)
                let later = try await next(["error", "presence", "presence.snapshot"])
                let laterUsers = ((later["data"] as? [String: Any])?["users"] as? [[String: Any]]) ?? []
                #expect(laterUsers.map { $0["user_id"] as? String } == [cat.id] && laterUsers.first?["status"] as? String == "offline")
                try await socket.close()
            } catch {
                await app.server.shutdown()
                throw error
            }
            await app.server.shutdown()
        }
    }

    @Test("users on another node count, the best status wins, and a node that goes silent takes its users offline")
    func otherNodes() async throws {
        try await withParley { app, context in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            _ = try await app.conversation(ann, members: [ben])
            let benID = UUID(uuidString: ben.id)!
            let hub = try RealtimeTests.hub(app), presence = try Self.presence(app)
            let anns = try await hub.subscribe(userID: UUID(uuidString: ann.id)!)
            let elsewhere = UUID()
            await presence.receive(PresenceBatch(node: elsewhere, users: [ben.id: .away]))
            #expect(try await nextFrame(anns.frames, ["presence"]).presence?.status == "away")
            // Ben also opens a connection here: online beats away.
            let here = await presence.connect(userID: benID)
            #expect(try await nextFrame(anns.frames, ["presence"]).presence?.status == "online")
            await presence.disconnect(here, userID: benID)
            // The other node still has him away once the grace period is over.
            context.clock.advance(by: TimeInterval(context.settings.presenceGrace.components.seconds))
            #expect(try await nextFrame(anns.frames, ["presence"]).presence?.status == "away")
            // That node stops talking (it was killed): after three heartbeats it is dropped.
            await presence.tick()
            context.clock.advance(by: TimeInterval(context.settings.heartbeatInterval.components.seconds * 3 + 1))
            await presence.tick()
            #expect(try await nextFrame(anns.frames, ["presence"]).presence?.status == "offline")
        }
    }

    @Test("two nodes on one PostgreSQL database: a connection to one shows its user online to a subscriber of the other",
          .enabled(if: TestDatabase.postgresURL != nil))
    func twoNodes() async throws {
        try await withParley({ $0.presenceGrace = .zero }) { app, context in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            _ = try await app.conversation(ann, members: [ben])
            // Two serving nodes on the test's database, booted as `parley serve` boots them.
            var nodes: [Application] = []
            do {
                for _ in 0..<2 {
                    let node = try await Application.make(.testing)
                    nodes.append(node)
                    try await configure(node, settings: context.settings, clock: context.clock.appClock)
                    try await node.asyncBoot()
                }
                // Both listen before anything is said: this test is about the live path (a
                // node that starts listening later learns the state from hello/announce).
                let listeners = try nodes.map { try #require($0.storage[PostgresEventListenerKey.self]) }
                try await within(60, "both nodes' listeners") {
                    while !listeners.allSatisfy(\.isListening), !Task.isCancelled { await Task.yield() }
                }
                let anns = try await RealtimeTests.hub(nodes[1]).subscribe(userID: UUID(uuidString: ann.id)!)
                let presence = try Self.presence(nodes[0])
                let connection = await presence.connect(userID: UUID(uuidString: ben.id)!)
                #expect(try await nextFrame(anns.frames, ["presence"]).presence?.status == "online")
                await presence.disconnect(connection, userID: UUID(uuidString: ben.id)!)
                // One announcement a second at most: move the clock past it.
                context.clock.advance(by: 1)
                #expect(try await nextFrame(anns.frames, ["presence"]).presence?.status == "offline")
            } catch {
                for node in nodes { try? await node.asyncShutdown() }
                throw error
            }
            for node in nodes { try await node.asyncShutdown() }
        }
    }
}
