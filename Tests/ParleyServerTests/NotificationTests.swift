import Foundation
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

/// Notifications: the rules on their own, then the inbox through the API, on SQLite and (in CI)
/// PostgreSQL.
@Suite("Notifications")
struct NotificationTests {
    static let author = UUID(), named = UUID(), other = UUID(), replier = UUID()

    static func setting(_ id: UUID, _ level: Membership.NotificationLevel, muted: Bool = false) -> Membership.NotificationSetting {
        .init(userID: id, muted: muted, level: level)
    }

    static func kinds(_ recipients: [NotificationRules.Recipient]) -> [UUID: UserNotification.Kind] {
        Dictionary(uniqueKeysWithValues: recipients.map { ($0.userID, $0.kind) })
    }

    @Test("who a message notifies: mentions, direct messages, thread replies, levels and mute")
    func rules() {
        let mentionNamed = MessageFormat.Mentions(userIDs: [Self.named], everyone: false)
        // A channel at the default level (mentions): only the person named hears of it; never the author.
        #expect(Self.kinds(NotificationRules.recipients(
            authorID: Self.author, kind: .channel, mentions: mentionNamed, isReply: false, threadParticipants: [],
            members: [Self.setting(Self.author, .mentions), Self.setting(Self.named, .mentions), Self.setting(Self.other, .mentions)]))
            == [Self.named: .mention])
        // @channel reaches everyone who has not muted; a muted member hears only their own name.
        #expect(Self.kinds(NotificationRules.recipients(
            authorID: Self.author, kind: .channel, mentions: .init(userIDs: [], everyone: true), isReply: false, threadParticipants: [],
            members: [Self.setting(Self.named, .mentions, muted: true), Self.setting(Self.other, .mentions)]))
            == [Self.other: .mention])
        #expect(Self.kinds(NotificationRules.recipients(
            authorID: Self.author, kind: .channel, mentions: mentionNamed, isReply: false, threadParticipants: [],
            members: [Self.setting(Self.named, .mentions, muted: true)])) == [Self.named: .mention])
        // Level nothing: not even a mention.
        #expect(NotificationRules.recipients(
            authorID: Self.author, kind: .group, mentions: mentionNamed, isReply: false, threadParticipants: [],
            members: [Self.setting(Self.named, .nothing)]).isEmpty)
        // A direct message, a thread reply, and everything at level all.
        #expect(Self.kinds(NotificationRules.recipients(
            authorID: Self.author, kind: .direct, mentions: .init(), isReply: false, threadParticipants: [],
            members: [Self.setting(Self.other, .all)])) == [Self.other: .direct])
        #expect(Self.kinds(NotificationRules.recipients(
            authorID: Self.author, kind: .channel, mentions: .init(), isReply: true, threadParticipants: [Self.replier, Self.author],
            members: [Self.setting(Self.replier, .mentions), Self.setting(Self.other, .mentions), Self.setting(Self.named, .all)]))
            == [Self.replier: .threadReply, Self.named: .message])
    }

    /// Lets the notifications follower handle everything committed so far.
    static func settle(_ app: Application) async throws {
        let follower = try #require(app.storage[NotificationFollowerKey.self])
        while try await follower.followOnce() {}
    }

    static func inbox(_ app: Application, _ user: TestUser, query: String = "") async throws -> JSONResponse {
        let response = try await app.send(.GET, "v1/notifications\(query)", token: user.token)
        #expect(response.status == .ok, "\(response.body)")
        return response
    }

    @Test("mentions, direct messages and thread replies reach the inbox once; reading the conversation or the notification clears them")
    func inbox() async throws {
        try await withParley { app, context in
            let ann = try await app.user("ann"), bob = try await app.user("bob"), cara = try await app.user("cara")
            let channel = try await app.conversation(ann, kind: "channel", title: "general", members: [bob, cara])
            try await app.post("hello all", in: channel, by: bob)
            let mention = try await app.post("@ann can you look?", in: channel, by: bob)
            try await Self.settle(app)
            var annInbox = try await Self.inbox(app, ann)
            #expect(annInbox.items.map { $0["kind"] as? String } == ["mention"])
            #expect(annInbox["unread_count"] as? Int == 1)
            #expect(annInbox.items.first?["message_seq"] as? Int == mention["seq"] as? Int)
            #expect(annInbox.items.first?["actor_id"] as? String == bob.id)
            #expect(annInbox.items.first?["excerpt"] as? String == "@ann can you look?")
            #expect(try await Self.inbox(app, cara).items.isEmpty, "a channel at the default level tells only who is named")

            // A thread Cara started: Bob's reply notifies her.
            let root = try await app.post("lunch plans?", in: channel, by: cara)
            try await app.post("pizza", in: channel, by: bob, replyTo: root.string("id"))
            // A direct message.
            let direct = try await app.conversation(bob, kind: "direct", title: nil, members: [cara])
            context.clock.advance(by: 1)
            try await app.post("psst", in: direct, by: bob)
            try await Self.settle(app)
            let caraInbox = try await Self.inbox(app, cara)
            #expect(caraInbox.items.map { $0["kind"] as? String } == ["direct", "thread_reply"])
            #expect(caraInbox["unread_count"] as? Int == 2)

            // Handling the same events again (another node from an older cursor) adds nothing.
            try await (app.db as! any SQLDatabase).raw("UPDATE event_cursors SET position = 0 WHERE name = 'notifications'").run()
            let second = Notifier.follower(database: { app.db }, writes: try #require(app.storage[WriteGateKey.self]),
                                           domainEvents: app.domainEvents, clock: .live, logger: app.logger)
            while try await second.followOnce() {}
            #expect(try await Self.inbox(app, cara).items.count == 2)

            // Reading the direct conversation reads its notification.
            let lastSeq = 1
            #expect(try await app.send(.PUT, "v1/conversations/\(direct)/read", json: #"{"seq":\#(lastSeq)}"#, token: cara.token).status == .ok)
            try await Self.settle(app)
            let afterRead = try await Self.inbox(app, cara, query: "?unread=true")
            #expect(afterRead.items.map { $0["kind"] as? String } == ["thread_reply"])
            #expect(afterRead["unread_count"] as? Int == 1)

            // Marking one read by id, then all.
            let id = try #require(annInbox.items.first?["id"] as? String)
            let marked = try await app.send(.POST, "v1/notifications/read", json: #"{"ids":["\#(id)"]}"#, token: ann.token)
            #expect(marked["unread_count"] as? Int == 0)
            annInbox = try await Self.inbox(app, ann)
            #expect(annInbox.items.first?["read_at"] is String)
            #expect(try await app.send(.POST, "v1/notifications/read", json: #"{"all":true}"#, token: cara.token)["unread_count"] as? Int == 0)
            expectProblem(try await app.send(.POST, "v1/notifications/read", json: #"{}"#, token: cara.token), .unprocessableEntity)
            expectProblem(try await app.send(.POST, "v1/notifications/read", json: #"{"ids":["nope"]}"#, token: cara.token), .unprocessableEntity)
        }
    }

    @Test("a channel's message reads only the members it can notify (the named, the thread's people, those at level all); @channel reads all")
    func channelReadsOnlyCandidates() async throws {
        try await withParley { app, context in
            let ann = try await app.user("ann"), bob = try await app.user("bob"), cara = try await app.user("cara")
            let dan = try await app.user("dan"), eve = try await app.user("eve")
            let channel = try await app.conversation(ann, kind: "channel", title: "general", members: [bob, cara, dan, eve])
            let group = try await app.conversation(ann, kind: "group", title: "Team", members: [bob, cara])
            #expect(try await app.send(.PUT, "v1/conversations/\(channel)/membership", json: #"{"notify":"all"}"#, token: bob.token).status == .ok)
            let id = { (user: TestUser) in UUID(uuidString: user.id)! }

            let narrowed = try await Membership.notificationSettings(of: UUID(uuidString: channel)!, narrowedTo: [id(dan)], on: app.db)
            #expect(Set(narrowed.members.map(\.userID)) == [id(bob), id(dan)])
            #expect(narrowed.kind == .channel && !narrowed.complete)
            let none = try await Membership.notificationSettings(of: UUID(uuidString: channel)!, narrowedTo: [], on: app.db)
            #expect(none.members.map(\.userID) == [id(bob)])
            let whole = try await Membership.notificationSettings(of: UUID(uuidString: group)!, narrowedTo: [id(dan)], on: app.db)
            #expect(Set(whole.members.map(\.userID)) == [id(ann), id(bob), id(cara)] && whole.complete, "a group is read whole")

            // The inbox is what the rules say, with the channel read narrowly.
            let root = try await app.post("who is in?", in: channel, by: cara)
            context.clock.advance(by: 1)
            try await app.post("@dan look", in: channel, by: ann)
            context.clock.advance(by: 1)
            try await app.post("me", in: channel, by: eve, replyTo: root.string("id"))
            context.clock.advance(by: 1)
            try await app.post("@channel meeting", in: channel, by: ann)
            try await Self.settle(app)
            let kinds = { (user: TestUser) in try await Self.inbox(app, user).items.compactMap { $0["kind"] as? String } }
            #expect(try await kinds(bob) == ["mention", "message", "message", "message"])
            #expect(try await kinds(cara) == ["mention", "thread_reply"])
            #expect(try await kinds(dan) == ["mention", "mention"])
            #expect(try await kinds(eve) == ["mention"])
        }
    }

    @Test("muting and the notification level are mine to set, and the inbox follows them")
    func settings() async throws {
        try await withParley { app, context in
            let ann = try await app.user("anya"), bob = try await app.user("boris")
            let group = try await app.conversation(ann, kind: "group", title: "Team", members: [bob])
            // A group tells everything by default.
            let shown = try await app.send(.GET, "v1/conversations/\(group)", token: bob.token)
            #expect((shown["membership"] as? [String: Any])?["notify"] as? String == "all")

            var set = try await app.send(.PUT, "v1/conversations/\(group)/membership", json: #"{"notify":"mentions"}"#, token: bob.token)
            #expect(set.status == .ok, "\(set.body)")
            #expect(set.string("notify") == "mentions")
            #expect(set["muted"] as? Bool == false)
            try await app.post("not for you", in: group, by: ann)
            try await app.post("@boris for you", in: group, by: ann)

            set = try await app.send(.PUT, "v1/conversations/\(group)/membership", json: #"{"muted":true}"#, token: bob.token)
            #expect(set["muted"] as? Bool == true)
            #expect(set.string("notify") == "mentions")
            try await app.post("@here muted away", in: group, by: ann)
            context.clock.advance(by: 1)
            try await app.post("@boris still named", in: group, by: ann)
            try await Self.settle(app)
            let inbox = try await Self.inbox(app, bob)
            #expect(inbox.items.compactMap { $0["excerpt"] as? String } == ["@boris still named", "@boris for you"])

            // null goes back to the default; bad values are named.
            set = try await app.send(.PUT, "v1/conversations/\(group)/membership", json: #"{"notify":null,"muted":false}"#, token: bob.token)
            #expect(set.string("notify") == "all")
            expectProblem(try await app.send(.PUT, "v1/conversations/\(group)/membership", json: #"{"notify":"loud"}"#, token: bob.token),
                          .unprocessableEntity)
            let unknown = try await app.send(.PUT, "v1/conversations/\(group)/membership", json: #"{"volume":3}"#, token: bob.token)
            #expect(unknown.fieldErrors == ["volume": "unknown_field"])
        }
    }
}
