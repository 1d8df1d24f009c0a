import Fluent
import Foundation
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

@Suite("Conversations")
struct ConversationTests {
    @Test("a direct conversation is unique per pair: creating it again returns the same one")
    func directIsUnique() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let first = try await app.send(.POST, "v1/conversations", json: #"{"kind":"direct","member_ids":["\#(ben.id)"]}"#, token: ann.token)
            #expect(first.status == .created)
            #expect(first["title"] == nil)
            let again = try await app.send(.POST, "v1/conversations", json: #"{"kind":"direct","member_ids":["\#(ann.id)"]}"#, token: ben.token)
            #expect(again.status == .ok)
            #expect(again.string("id") == first.string("id"))
            #expect(try await Conversation.query(on: app.db).count() == 1)
        }
    }

    @Test("bad conversation input is 422 naming each field", arguments: [
        (#"{"kind":"room"}"#, ["kind"]),
        (#"{"kind":"direct","title":"x","member_ids":[]}"#, ["title", "member_ids"]),
        (#"{"kind":"channel"}"#, ["title"]),
        (#"{"kind":"channel","title":"\#(String(repeating: "t", count: 101))","visibility":"secret"}"#, ["title", "visibility"]),
        (#"{"kind":"group","member_ids":["not-a-uuid"]}"#, ["member_ids[0]"]),
        (#"{"kind":"group","member_ids":["00000000-0000-0000-0000-000000000001"]}"#, ["member_ids[0]"]),
        (#"{"kind":"group","visibility":"public"}"#, ["visibility"]),
        (#"{}"#, ["kind"]),
    ])
    func createValidation(body: String, fields: [String]) async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let response = try await app.send(.POST, "v1/conversations", json: body, token: ann.token)
            expectProblem(response, .unprocessableEntity)
            #expect(Set(response.fieldErrors.keys) == Set(fields), "\(response.body)")
        }
    }

    @Test("the list is mine, newest activity first, with unread counts and last messages")
    func list() async throws {
        try await withParley { app, context in
            let ann = try await app.user("ann"), ben = try await app.user("ben"), cat = try await app.user("cat")
            let older = try await app.conversation(ann, title: "Older", members: [ben])
            context.clock.advance(by: 1)
            let newer = try await app.conversation(ann, title: "Newer", members: [ben])
            _ = try await app.conversation(cat, title: "Not mine")
            context.clock.advance(by: 1)
            try await app.post("hello", in: older, by: ben)
            context.clock.advance(by: 1)
            try await app.post("again", in: older, by: ben)

            let page = try await app.send(.GET, "v1/conversations", token: ann.token)
            #expect(page.status == .ok)
            #expect(page.items.map { $0["id"] as? String } == [older, newer])
            #expect(page.items[0]["unread_count"] as? Int == 2)
            #expect((page.items[0]["last_message"] as? [String: Any])?["body"] as? String == "again")
            #expect(page.items[1]["unread_count"] as? Int == 0)
            #expect(page.items[1]["last_message"] == nil)

            // Cursor pagination: one item per page walks both, then stops.
            let first = try await app.send(.GET, "v1/conversations?limit=1", token: ann.token)
            let cursor = try #require(first.string("next_cursor"))
            let second = try await app.send(.GET, "v1/conversations?limit=1&cursor=\(cursor)", token: ann.token)
            #expect(second.items.map { $0["id"] as? String } == [newer])
            #expect(second["next_cursor"] == nil)
            expectProblem(try await app.send(.GET, "v1/conversations?cursor=garbage", token: ann.token), .unprocessableEntity)
            expectProblem(try await app.send(.GET, "v1/conversations?limit=0", token: ann.token), .unprocessableEntity)
            expectProblem(try await app.send(.GET, "v1/conversations?limit=1000", token: ann.token), .unprocessableEntity)
        }
    }

    @Test("listing 200 conversations takes the same fixed number of statements as listing 2")
    func noNPlusOne() async throws {
        try await withParley(logLevel: .debug) { app, context in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            func statements(limit: Int) async throws -> Int {
                let mine = try await Membership.query(on: app.db).filter(\.$user.$id == UUID(uuidString: ann.id)!).count()
                context.logs.reset()
                let page = try await app.send(.GET, "v1/conversations?limit=\(limit)", token: ann.token)
                let count = context.logs.sqlStatements.count
                #expect(page.items.count == min(limit, mine))
                return count
            }
            for index in 0..<2 {
                let id = try await app.conversation(ann, title: "c\(index)", members: [ben])
                try await app.post("m\(index)", in: id, by: ben)
            }
            let few = try await statements(limit: 200)
            for index in 2..<200 {
                let id = try await app.conversation(ann, title: "c\(index)", members: [ben])
                if index % 3 == 0 { try await app.post("m\(index)", in: id, by: ben) }
            }
            let many = try await statements(limit: 200)
            #expect(few == many, "statements grew with the number of conversations: \(few) → \(many)")
            // Session check, the page, unread counts, last messages and their reactions.
            #expect(many == 5, "\(context.logs.sqlStatements.joined(separator: "\n"))")
        }
    }

    @Test("GET of a conversation has an ETag; If-None-Match gets 304 with no body")
    func etag() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let id = try await app.conversation(ann)
            let first = try await app.send(.GET, "v1/conversations/\(id)", token: ann.token)
            #expect(first.headers.first(name: .cacheControl) == "private, no-cache")
            let etag = try #require(first.headers.first(name: .eTag))
            let cached = try await app.send(.GET, "v1/conversations/\(id)", token: ann.token, headers: ["If-None-Match": etag])
            #expect(cached.status == .notModified)
            #expect(cached.body.isEmpty)
            try await app.post("changes it", in: id, by: ann)
            let changed = try await app.send(.GET, "v1/conversations/\(id)", token: ann.token, headers: ["If-None-Match": etag])
            #expect(changed.status == .ok)
            #expect(changed.headers.first(name: .eTag) != etag)
        }
    }

    @Test("PATCH by owner or admin; DELETE by owner; direct conversations take no title")
    func updateAndDelete() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, kind: "channel", title: "general", visibility: "public", members: [ben])
            let patched = try await app.send(.PATCH, "v1/conversations/\(id)", json: #"{"topic":"Say hi"}"#, token: ann.token,
                                             headers: ["Content-Type": "application/merge-patch+json"])
            #expect(patched.status == .ok)
            #expect(patched.string("topic") == "Say hi")
            #expect(patched.string("title") == "general")
            expectProblem(try await app.send(.PATCH, "v1/conversations/\(id)", json: #"{"topic":"x"}"#, token: ben.token), .forbidden)
            expectProblem(try await app.send(.PATCH, "v1/conversations/\(id)", json: #"{"title":null}"#, token: ann.token), .unprocessableEntity)

            let direct = try await app.conversation(ann, kind: "direct", title: nil, members: [ben])
            let bad = try await app.send(.PATCH, "v1/conversations/\(direct)", json: #"{"title":"x"}"#, token: ann.token)
            expectProblem(bad, .forbidden) // nobody manages a direct conversation

            expectProblem(try await app.send(.DELETE, "v1/conversations/\(id)", token: ben.token), .forbidden)
            #expect(try await app.send(.DELETE, "v1/conversations/\(id)", token: ann.token).status == .noContent)
            expectProblem(try await app.send(.GET, "v1/conversations/\(id)", token: ann.token), .notFound)
            #expect(try await Event.query(on: app.db).filter(\.$type == "conversation.deleted").count() == 1)
        }
    }

    @Test("public channels are listed and joinable; private ones are invisible to outsiders")
    func channels() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let open = try await app.conversation(ann, kind: "channel", title: "Random Talk", visibility: "public")
            let closed = try await app.conversation(ann, kind: "channel", title: "Secret Plans", visibility: "private")
            try await app.post("before ben joined", in: open, by: ann)

            let directory = try await app.send(.GET, "v1/channels?q=random", token: ben.token)
            #expect(directory.items.map { $0["id"] as? String } == [open])
            #expect(directory.items.first?["member_count"] as? Int == 1)
            #expect(try await app.send(.GET, "v1/channels", token: ben.token).items.count == 1)

            // Outsiders may read a public channel but must join to write.
            #expect(try await app.send(.GET, "v1/conversations/\(open)/messages", token: ben.token).status == .ok)
            expectProblem(try await app.post("hi", in: open, by: ben), .forbidden)
            let joined = try await app.send(.POST, "v1/conversations/\(open)/join", token: ben.token)
            #expect(joined.status == .created)
            #expect(joined["unread_count"] as? Int == 0, "history before joining counts as read")
            #expect(try await app.send(.POST, "v1/conversations/\(open)/join", token: ben.token).status == .ok)
            #expect(try await app.post("hi", in: open, by: ben).status == .created)

            expectProblem(try await app.send(.GET, "v1/conversations/\(closed)", token: ben.token), .notFound)
            expectProblem(try await app.send(.POST, "v1/conversations/\(closed)/join", token: ben.token), .notFound)

            #expect(try await app.send(.POST, "v1/conversations/\(open)/leave", token: ben.token).status == .noContent)
            #expect(try await app.send(.GET, "v1/conversations", token: ben.token).items.isEmpty)
        }
    }

    @Test("members: add, change role, remove; the owner leaving hands over ownership")
    func members() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben"), cat = try await app.user("cat")
            let id = try await app.conversation(ann, members: [ben])
            let added = try await app.send(.POST, "v1/conversations/\(id)/members", json: #"{"user_id":"\#(cat.id)"}"#, token: ann.token)
            #expect(added.status == .created)
            #expect(try await app.send(.POST, "v1/conversations/\(id)/members", json: #"{"user_id":"\#(cat.id)"}"#, token: ann.token).status == .ok)
            expectProblem(try await app.send(.POST, "v1/conversations/\(id)/members", json: #"{"user_id":"\#(cat.id)"}"#, token: ben.token), .forbidden)

            let promoted = try await app.send(.PATCH, "v1/conversations/\(id)/members/\(ben.id)", json: #"{"role":"admin"}"#, token: ann.token)
            #expect(promoted.string("role") == "admin")
            expectProblem(try await app.send(.PATCH, "v1/conversations/\(id)/members/\(cat.id)", json: #"{"role":"owner"}"#, token: ben.token), .forbidden)
            expectProblem(try await app.send(.PATCH, "v1/conversations/\(id)/members/\(cat.id)", json: #"{"role":"king"}"#, token: ann.token), .unprocessableEntity)

            let members = try await app.send(.GET, "v1/conversations/\(id)/members", token: cat.token)
            #expect(Set(members.items.compactMap { ($0["user"] as? [String: Any])?["handle"] as? String }) == ["ann", "ben", "cat"])

            #expect(try await app.send(.DELETE, "v1/conversations/\(id)/members/\(cat.id)", token: ben.token).status == .noContent)
            expectProblem(try await app.send(.GET, "v1/conversations/\(id)", token: cat.token), .notFound)

            #expect(try await app.send(.POST, "v1/conversations/\(id)/leave", token: ann.token).status == .noContent)
            let roles = try await app.send(.GET, "v1/conversations/\(id)/members", token: ben.token)
            #expect(roles.items.first?["role"] as? String == "owner")
            #expect(roles.items.count == 1)
        }
    }

    @Test("the read marker only moves forward, and unread counts follow it")
    func readMarker() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, members: [ben])
            for text in ["one", "two", "three"] { try await app.post(text, in: id, by: ann) }
            let moved = try await app.send(.PUT, "v1/conversations/\(id)/read", json: #"{"seq":2}"#, token: ben.token)
            #expect(moved.status == .ok)
            #expect(moved["last_read_seq"] as? Int == 2)
            #expect(moved["unread_count"] as? Int == 1)
            let back = try await app.send(.PUT, "v1/conversations/\(id)/read", json: #"{"seq":1}"#, token: ben.token)
            #expect(back["last_read_seq"] as? Int == 2)
            expectProblem(try await app.send(.PUT, "v1/conversations/\(id)/read", json: #"{"seq":99}"#, token: ben.token), .unprocessableEntity)
            expectProblem(try await app.send(.PUT, "v1/conversations/\(id)/read", json: #"{"seq":-1}"#, token: ben.token), .unprocessableEntity)
            expectProblem(try await app.send(.PUT, "v1/conversations/\(id)/read", json: #"{}"#, token: ben.token), .unprocessableEntity)
            let events = try await Event.query(on: app.db).filter(\.$type == "read.updated").all()
            #expect(events.count == 1)
            #expect(events.first?.userID?.wire == ben.id)
        }
    }

    @Test("concurrent membership changes (transactions that read, then write) never fail")
    func concurrentMembershipChanges() async throws {
        try await withParley { app, _ in
            let owner = try await app.user("owner")
            var people: [TestUser] = []
            for n in 0..<6 { people.append(try await app.user("person\(n)")) }
            let channel = try await app.conversation(owner, kind: "channel", title: "busy", visibility: "public")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for person in people {
                    group.addTask {
                        for _ in 0..<8 {
                            // Each person's own join and leave alternate, so each succeeds as such.
                            let joined = try await app.send(.POST, "v1/conversations/\(channel)/join", token: person.token)
                            #expect(joined.status == .created, "\(joined.body)")
                            let left = try await app.send(.POST, "v1/conversations/\(channel)/leave", token: person.token)
                            #expect(left.status == .noContent, "\(left.body)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await Membership.query(on: app.db).count() == 1)

            // Owners leaving look up a successor before writing, while others write too.
            var groups: [(TestUser, String)] = []
            for (index, person) in people.enumerated() {
                for round in 0..<4 {
                    groups.append((person, try await app.conversation(person, title: "g\(index)-\(round)", members: [owner])))
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (person, id) in groups {
                    group.addTask {
                        let left = try await app.send(.POST, "v1/conversations/\(id)/leave", token: person.token)
                        #expect(left.status == .noContent, "\(left.body)")
                        let sent = try await app.post("still here", in: id, by: owner)
                        #expect(sent.status == .created, "\(sent.body)")
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test("user look-ups for pickers")
    func users() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            try await app.user("annabel")
            try await app.user("bob")
            let found = try await app.send(.GET, "v1/users?q=ANN", token: ann.token)
            #expect(found.items.compactMap { $0["handle"] as? String } == ["ann", "annabel"])
            #expect(found.items.allSatisfy { $0["email"] == nil })
            let one = try await app.send(.GET, "v1/users/\(ann.id)", token: ann.token)
            #expect(one.string("handle") == "ann")
            expectProblem(try await app.send(.GET, "v1/users/nope", token: ann.token), .notFound)
        }
    }
}
