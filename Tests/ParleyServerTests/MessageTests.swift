import Fluent
import Foundation
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

@Suite("Messages")
struct MessageTests {
    @Test("seqs start at 1 and pages page by seq in both directions")
    func paging() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let id = try await app.conversation(ann)
            for n in 1...7 { #expect(try await app.post("m\(n)", in: id, by: ann)["seq"] as? Int == n) }

            let latest = try await app.send(.GET, "v1/conversations/\(id)/messages?limit=3", token: ann.token)
            #expect(latest.items.map { $0["seq"] as? Int } == [5, 6, 7])
            #expect(latest["has_more"] as? Bool == true)
            let before = try await app.send(.GET, "v1/conversations/\(id)/messages?before=5&limit=3", token: ann.token)
            #expect(before.items.map { $0["seq"] as? Int } == [2, 3, 4])
            let after = try await app.send(.GET, "v1/conversations/\(id)/messages?after=5&limit=3", token: ann.token)
            #expect(after.items.map { $0["seq"] as? Int } == [6, 7])
            #expect(after["has_more"] as? Bool == false)

            for query in ["limit=0", "limit=101", "limit=1000", "limit=x", "before=0", "after=-1", "before=2&after=1"] {
                expectProblem(try await app.send(.GET, "v1/conversations/\(id)/messages?\(query)", token: ann.token), .unprocessableEntity)
            }
        }
    }

    @Test("a page has an ETag and answers If-None-Match with 304")
    func pageETag() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let id = try await app.conversation(ann)
            try await app.post("one", in: id, by: ann)
            let page = try await app.send(.GET, "v1/conversations/\(id)/messages", token: ann.token)
            let etag = try #require(page.headers.first(name: .eTag))
            #expect(page.headers.first(name: .cacheControl) == "private, no-cache")
            let cached = try await app.send(.GET, "v1/conversations/\(id)/messages", token: ann.token, headers: ["If-None-Match": etag])
            #expect(cached.status == .notModified && cached.body.isEmpty)
            try await app.post("two", in: id, by: ann)
            #expect(try await app.send(.GET, "v1/conversations/\(id)/messages", token: ann.token, headers: ["If-None-Match": etag]).status == .ok)
        }
    }

    @Test("bodies are 1-4000 characters after trimming")
    func bodyRules() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let id = try await app.conversation(ann)
            for body in ["", "   \n ", String(repeating: "x", count: 4001)] {
                let response = try await app.post(body, in: id, by: ann)
                expectProblem(response, .unprocessableEntity)
                #expect(response.fieldErrors.keys.contains("body"))
            }
            let trimmed = try await app.post("  hi  ", in: id, by: ann)
            #expect(trimmed.string("body") == "hi")
            #expect(try await app.post(String(repeating: "é", count: 4000), in: id, by: ann).status == .created)
            expectProblem(try await app.send(.POST, "v1/conversations/\(id)/messages", json: #"{"body":null}"#, token: ann.token), .unprocessableEntity)
        }
    }

    @Test("the same Idempotency-Key and body return the original message; a different body is 422")
    func idempotency() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let id = try await app.conversation(ann)
            let first = try await app.post("pay rent", in: id, by: ann, key: "key-1")
            #expect(first.status == .created)
            let again = try await app.post("pay rent", in: id, by: ann, key: "key-1")
            #expect(again.status == .created)
            #expect(again.string("id") == first.string("id"))
            #expect(again.headers.first(name: "Idempotent-Replayed") == "true")
            let different = try await app.post("pay double rent", in: id, by: ann, key: "key-1")
            expectProblem(different, .unprocessableEntity)
            #expect(different.string("type") == "/problems/idempotency-key-reused")
            #expect(try await Message.query(on: app.db).count() == 1)
            #expect(try await Event.query(on: app.db).filter(\.$type == "message.created").count() == 1)
            expectProblem(try await app.post("x", in: id, by: ann, key: String(repeating: "k", count: 256)), .unprocessableEntity)
            expectProblem(try await app.post("x", in: id, by: ann, key: "has space"), .unprocessableEntity)
        }
    }

    @Test("idempotency survives a restart: a new server on the same database answers the retry with the original")
    func idempotencyAcrossRestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("restart.sqlite").path
        // On SQLite the database must outlive the first application: a file, not memory.
        try await withParley({ if $0.database.isSQLite { $0.database = .sqlite(path: path) } }) { app, context in
            let ann = try await app.user("ann")
            let conversation = try await app.conversation(ann)
            let original = try #require(try await app.post("once", in: conversation, by: ann, key: "restart-key").string("id"))

            // A restarted server: a new application on the same database, none of the first one's memory.
            let restarted = try await Application.make(.testing)
            do {
                try await configure(restarted, settings: context.settings, clock: context.clock.appClock)
                try await prepareDatabase(restarted)
                let again = try await restarted.post("once", in: conversation, by: ann, key: "restart-key")
                #expect(again.status == .created)
                #expect(again.string("id") == original)
                #expect(try await Message.query(on: restarted.db).count() == 1)
            } catch {
                try? await restarted.asyncShutdown()
                throw error
            }
            try await restarted.asyncShutdown()
        }
    }

    @Test("a failure after the seq is taken leaves no gap, no event and no idempotency record")
    func atomicity() async throws {
        struct Injected: Error {}
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let id = try await app.conversation(ann)
            try await app.post("one", in: id, by: ann)
            let hooks = try #require(app.storage[ChatKey.self]).hooks
            hooks.afterSeqAssigned = { seq in
                #expect(seq == 2)
                throw Injected()
            }
            let failed = try await app.post("two", in: id, by: ann, key: "atomic-key")
            #expect(failed.status == .internalServerError)
            #expect(failed.string("detail")?.contains("Injected") == false)
            hooks.afterSeqAssigned = nil

            let conversation = try #require(try await Conversation.find(UUID(uuidString: id), on: app.db))
            #expect(conversation.lastSeq == 1)
            #expect(try await Message.query(on: app.db).filter(\.$idempotencyKey == "atomic-key").count() == 0)
            #expect(try await Event.query(on: app.db).filter(\.$type == "message.created").count() == 1)
            let retried = try await app.post("two", in: id, by: ann, key: "atomic-key")
            #expect(retried.status == .created)
            #expect(retried["seq"] as? Int == 2)
        }
    }

    @Test("concurrent senders get gap-free, unique seqs")
    func concurrentSenders() async throws {
        try await withParley { app, _ in
            let owner = try await app.user("owner")
            var senders: [TestUser] = []
            for n in 0..<8 { senders.append(try await app.user("sender\(n)")) }
            let id = try await app.conversation(owner, members: senders)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for sender in senders {
                    group.addTask {
                        for n in 0..<15 {
                            let response = try await app.post("\(sender.handle) \(n)", in: id, by: sender)
                            #expect(response.status == .created, "\(response.body)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            let seqs = try await Message.query(on: app.db).filter(\.$conversation.$id == UUID(uuidString: id)!).all().map(\.seq).sorted()
            #expect(seqs == Array(1...120))
            let events = try await Event.query(on: app.db).filter(\.$type == "message.created").count()
            #expect(events == 120)
        }
    }

    @Test("GET of a message answers a matching If-None-Match with 304; a reaction changes its ETag but does not make an If-Match stale")
    func messageETag() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, members: [ben])
            try await app.post("hello", in: id, by: ann)
            let path = "v1/conversations/\(id)/messages/1"
            let first = try await app.send(.GET, path, token: ann.token)
            let etag = try #require(first.headers.first(name: .eTag))

            let cached = try await app.send(.GET, path, token: ann.token, headers: ["If-None-Match": etag])
            #expect(cached.status == .notModified)
            #expect(cached.body.isEmpty)
            #expect(cached.headers.first(name: .eTag) == etag)

            #expect(try await app.send(.PUT, "\(path)/reactions/%F0%9F%91%8D", token: ben.token).status == .created)
            let reacted = try await app.send(.GET, path, token: ann.token, headers: ["If-None-Match": etag])
            #expect(reacted.status == .ok)
            #expect(reacted.headers.first(name: .eTag) != etag)
            let patched = try await app.send(.PATCH, path, json: #"{"body":"edited"}"#, token: ann.token, headers: ["If-Match": etag])
            #expect(patched.status == .ok, "\(patched.body)")
            expectProblem(try await app.send(.PATCH, path, json: #"{"body":"again"}"#, token: ann.token, headers: ["If-Match": etag]),
                          .preconditionFailed)
        }
    }

    @Test("PUT replaces, merge PATCH changes only what it names, both honour If-Match")
    func editing() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, members: [ben])
            let root = try await app.post("root", in: id, by: ann)
            let rootID = try #require(root.string("id"))
            try await app.post("draft", in: id, by: ann)
            let path = "v1/conversations/\(id)/messages/2"
            let etag = try #require(try await app.send(.GET, path, token: ann.token).headers.first(name: .eTag))

            let missing = try await app.send(.PUT, path, json: #"{"body":"only body"}"#, token: ann.token)
            expectProblem(missing, .unprocessableEntity)
            #expect(missing.fieldErrors["reply_to"] == "required")

            let replaced = try await app.send(.PUT, path, json: #"{"body":"final","reply_to":"\#(rootID)"}"#, token: ann.token, headers: ["If-Match": etag])
            #expect(replaced.status == .ok, "\(replaced.body)")
            #expect(replaced.string("body") == "final")
            #expect(replaced["reply_to_seq"] as? Int == 1)
            #expect(replaced["edited_at"] is String)
            expectProblem(try await app.send(.PUT, path, json: #"{"body":"stale","reply_to":null}"#, token: ann.token, headers: ["If-Match": etag]),
                          .preconditionFailed)

            let patched = try await app.send(.PATCH, path, json: #"{"body":"patched"}"#, token: ann.token,
                                             headers: ["Content-Type": "application/merge-patch+json"])
            #expect(patched.string("body") == "patched")
            #expect(patched["reply_to_seq"] as? Int == 1, "a merge patch leaves reply_to alone")
            let unthreaded = try await app.send(.PATCH, path, json: #"{"reply_to":null}"#, token: ann.token,
                                                headers: ["Content-Type": "application/merge-patch+json"])
            #expect(unthreaded["reply_to"] == nil)
            expectProblem(try await app.send(.PATCH, path, json: #"{"body":null}"#, token: ann.token), .unprocessableEntity)
            expectProblem(try await app.send(.PATCH, path, json: #"{"body":"not mine"}"#, token: ben.token), .forbidden)

            let revisions = try await MessageRevision.query(on: app.db).all().map(\.body)
            #expect(revisions == ["draft", "final", "patched"])
        }
    }

    @Test("reply_to must be a message of the same conversation; replies form the thread")
    func threads() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let id = try await app.conversation(ann)
            let other = try await app.conversation(ann, title: "Other")
            let foreign = try #require(try await app.post("elsewhere", in: other, by: ann).string("id"))
            let root = try #require(try await app.post("question?", in: id, by: ann).string("id"))
            let reply = try #require(try await app.post("answer", in: id, by: ann, replyTo: root).string("id"))
            // A reply to a reply joins the root's thread.
            let nested = try await app.post("more", in: id, by: ann, replyTo: reply)
            #expect(nested["reply_to"] as? String == root)

            let cross = try await app.post("nope", in: id, by: ann, replyTo: foreign)
            expectProblem(cross, .unprocessableEntity)
            #expect(cross.fieldErrors["reply_to"] == "not_in_conversation")
            expectProblem(try await app.post("nope", in: id, by: ann, replyTo: "not-a-uuid"), .unprocessableEntity)

            let thread = try await app.send(.GET, "v1/conversations/\(id)/messages/1/replies", token: ann.token)
            #expect(thread.items.map { $0["body"] as? String } == ["answer", "more"])
            let rootDTO = try await app.send(.GET, "v1/conversations/\(id)/messages/1", token: ann.token)
            #expect(rootDTO["reply_count"] as? Int == 2)
        }
    }

    @Test("deleting leaves a tombstone: the seq stays, the body is gone from every read")
    func tombstones() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, members: [ben])
            try await app.post("keep", in: id, by: ben)
            try await app.post("secret number 12345", in: id, by: ben)
            try await app.post("keep too", in: id, by: ben)
            try await app.send(.PATCH, "v1/conversations/\(id)/messages/2", json: #"{"body":"secret number 67890"}"#, token: ben.token)
            expectProblem(try await app.send(.DELETE, "v1/conversations/\(id)/messages/1", token: ben.token,
                                             headers: ["If-Match": "\"stale\""]), .preconditionFailed)
            #expect(try await app.send(.DELETE, "v1/conversations/\(id)/messages/2", token: ann.token).status == .noContent, "owners delete any message")

            let page = try await app.send(.GET, "v1/conversations/\(id)/messages", token: ben.token)
            #expect(page.items.map { $0["seq"] as? Int } == [1, 2, 3])
            #expect(page.items[1]["body"] == nil)
            #expect(page.items[1]["deleted_at"] is String)
            #expect(!page.body.contains("secret"))
            let search = try await app.send(.GET, "v1/search/messages?q=secret", token: ben.token)
            #expect(search.items.isEmpty)
            #expect(try await MessageRevision.query(on: app.db).count() == 0)
            try await app.post("the owner's", in: id, by: ann)
            expectProblem(try await app.send(.DELETE, "v1/conversations/\(id)/messages/4", token: ben.token), .forbidden)
        }
    }

    @Test("reactions are idempotent and validated")
    func reactions() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let id = try await app.conversation(ann, members: [ben])
            try await app.post("nice", in: id, by: ann)
            let thumbs = "%F0%9F%91%8D"
            let path = "v1/conversations/\(id)/messages/1/reactions/"
            #expect(try await app.send(.PUT, path + thumbs, token: ann.token).status == .created)
            #expect(try await app.send(.PUT, path + thumbs, token: ann.token).status == .ok)
            #expect(try await app.send(.PUT, path + thumbs, token: ben.token).status == .created)
            #expect(try await app.send(.PUT, path + ":party_parrot:", token: ben.token).status == .created)
            let message = try await app.send(.GET, "v1/conversations/\(id)/messages/1", token: ann.token)
            let reactions = try #require(message["reactions"] as? [[String: Any]])
            #expect(reactions.map { $0["emoji"] as? String } == ["👍", ":party_parrot:"])
            #expect(reactions.first?["count"] as? Int == 2)
            #expect(reactions.first?["me"] as? Bool == true)
            #expect(reactions.last?["me"] as? Bool == false)

            for bad in ["ab", "%F0%9F%91%8D%F0%9F%91%8D", ":" + String(repeating: "x", count: 40) + ":", ":UPPER:", "1"] {
                expectProblem(try await app.send(.PUT, path + bad, token: ann.token), .unprocessableEntity)
            }
            #expect(try await app.send(.DELETE, path + thumbs, token: ann.token).status == .noContent)
            #expect(try await app.send(.DELETE, path + thumbs, token: ann.token).status == .noContent)
            #expect(try await Event.query(on: app.db).filter(\.$type == "reaction.removed").count() == 1)
        }
    }

    @Test("search finds readable messages, ranked, with escaped highlighted snippets")
    func search() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben"), eve = try await app.user("eve")
            let shared = try await app.conversation(ann, members: [ben])
            let hidden = try await app.conversation(eve, title: "Eve only")
            try await app.post("the deploy <script> failed again", in: shared, by: ann)
            try await app.post("deploy deploy deploy fixed", in: shared, by: ben)
            try await app.post("unrelated chatter", in: shared, by: ben)
            try await app.post("deploy plans nobody else sees", in: hidden, by: eve)

            let found = try await app.send(.GET, "v1/search/messages?q=deploy", token: ann.token)
            #expect(found.status == .ok)
            let bodies = found.items.compactMap { ($0["message"] as? [String: Any])?["body"] as? String }
            #expect(bodies.count == 2)
            #expect(bodies.first == "deploy deploy deploy fixed", "more matches rank first")
            let snippets = found.items.compactMap { $0["snippet"] as? String }
            #expect(snippets.contains { $0.contains("<mark>deploy</mark>") && $0.contains("&lt;script&gt;") })

            #expect(try await app.send(.GET, "v1/search/messages?q=depl", token: ann.token).items.count == 2, "the last word matches as a prefix")
            #expect(try await app.send(.GET, "v1/search/messages?q=deploy&conversation_id=\(hidden)", token: ann.token).items.isEmpty)
            for query in ["q=", "q=%22%2A%28", "q=x&conversation_id=nope", "q=x&limit=0"] {
                expectProblem(try await app.send(.GET, "v1/search/messages?\(query)", token: ann.token), .unprocessableEntity)
            }
            #expect(try await app.send(.GET, "v1/search/messages?q=AND%20OR%20NOT%20NEAR", token: ann.token).status == .ok)
        }
    }
    @Test("search results carry the same reply_count as the message's own GET, across conversations")
    func searchReplyCounts() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let first = try await app.conversation(ann, title: "One"), second = try await app.conversation(ann, title: "Two")
            let root = try #require(try await app.post("release notes", in: first, by: ann).string("id"))
            try await app.post("looks good", in: first, by: ann, replyTo: root)
            let other = try #require(try await app.post("release party", in: second, by: ann).string("id"))
            try await app.post("when?", in: second, by: ann, replyTo: other)
            try await app.post("tonight", in: second, by: ann, replyTo: other)

            let own = try await app.send(.GET, "v1/conversations/\(first)/messages/1", token: ann.token)
            #expect(own["reply_count"] as? Int == 1)
            let found = try await app.send(.GET, "v1/search/messages?q=release", token: ann.token)
            var counts: [String: Int] = [:]
            for item in found.items {
                let message = try #require(item["message"] as? [String: Any])
                counts[message["body"] as? String ?? ""] = message["reply_count"] as? Int
            }
            #expect(counts == ["release notes": 1, "release party": 2])
        }
    }
}
