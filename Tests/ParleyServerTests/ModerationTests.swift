import Foundation
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

/// Moderation of every message by a model Parley trains itself, reports, the moderators'
/// queue and decisions, policies, and the model registry's stages, through the API.
@Suite("Moderation and the model registry")
struct ModerationTests {
    /// Labelled examples made by the test: offers and demands for money against everyday chat.
    static func examples(_ count: Int, offset: Int = 0) -> [(text: String, label: Bool)] {
        let spam = ["WIN a FREE prize now, call 0800", "URGENT you have won cash, txt CLAIM to", "Free entry!! reply WIN for £1000",
                    "Claim your free ringtone, text GO to", "Congratulations you won a holiday, call now"]
        let ham = ["are we still on for lunch at", "I'll be home late tonight, see you at", "can you send me the notes from",
                   "thanks for yesterday, the meeting at", "let's move the review to"]
        return (0..<count).map { n in
            let index = n + offset
            return n % 2 == 0 ? ("\(spam[index / 2 % spam.count]) \(index)", true) : ("\(ham[index / 2 % ham.count]) \(index)", false)
        }
    }

    static func json(_ examples: [(text: String, label: Bool)]) -> String {
        #"{"examples":["# + examples.map { #"{"text":\#(jsonString($0.text)),"label":\#($0.label)}"# }.joined(separator: ",") + "]}"
    }

    static func admin(_ app: Application, _ handle: String = "root") async throws -> TestUser {
        let admin = try await app.user(handle)
        try await (app.db as! any SQLDatabase).raw("UPDATE users SET role = 'admin' WHERE handle = \(bind: handle)").run()
        return admin
    }

    /// Imports examples, trains a version in process (as the job does) and returns its number.
    static func train(_ app: Application, _ admin: TestUser, examples: [(text: String, label: Bool)]) async throws -> Int {
        let added = try await app.send(.POST, "v1/admin/models/moderation/examples", json: json(examples), token: admin.token)
        #expect(added.status == .created, "\(added.body)")
        let registry = try #require(app.storage[ModelRegistryKey.self])
        return try await registry.train("moderation", requestedBy: nil, on: app.db).version
    }

    static func stage(_ app: Application, _ admin: TestUser, version: Int, _ stage: String) async throws -> JSONResponse {
        try await app.send(.PUT, "v1/admin/models/moderation/versions/\(version)/stage", json: #"{"stage":"\#(stage)"}"#, token: admin.token)
    }

    @Test("a trained model in production holds a spam message for its author and moderators; members see its place; a moderator approves one message and removes another; decisions are audited and become examples")
    func moderationEndToEnd() async throws {
        try await withParley { app, _ in
            let root = try await Self.admin(app)
            let mod = try await app.user("mod"), ann = try await app.user("ann"), ben = try await app.user("ben")
            // An administrator makes a moderator (audited).
            let promoted = try await app.send(.PUT, "v1/admin/users/\(mod.id)/role", json: #"{"role":"moderator","reason":"volunteer"}"#,
                                              token: root.token)
            #expect(promoted.status == .ok, "\(promoted.body)")
            #expect(promoted.string("role") == "moderator")
            expectProblem(try await app.send(.PUT, "v1/admin/users/\(ben.id)/role", json: #"{"role":"admin"}"#, token: ann.token), .forbidden)
            let badRole = try await app.send(.PUT, "v1/admin/users/\(ben.id)/role", json: #"{"role":"overlord"}"#, token: root.token)
            expectProblem(badRole, .unprocessableEntity)
            #expect(badRole.fieldErrors == ["role": "invalid"])

            let group = try await app.conversation(ann, members: [ben])
            // No model deployed: nothing is scored.
            let early = try await app.post("WIN a FREE prize now, call 0800 99", in: group, by: ann)
            #expect(early.status == .created)
            #expect(early["moderation"] == nil)

            let version = try await Self.train(app, root, examples: Self.examples(60))
            let shown = try await app.send(.GET, "v1/admin/models/moderation/versions/\(version)", token: root.token)
            #expect(shown.status == .ok, "\(shown.body)")
            #expect(shown.string("stage") == "candidate")
            let report = try #require(shown["report"] as? [String: Any])
            #expect(report["examples"] as? Int == 60)
            #expect((report["f1"] as? Double ?? 0) > 0.9, "\(report)")
            #expect((report["precision_recall"] as? [Any])?.isEmpty == false)
            #expect((report["learning_curve"] as? [Any])?.count == 4)
            #expect(try await Self.stage(app, root, version: version, "production").status == .ok)
            let model = try await app.send(.GET, "v1/admin/models/moderation", token: root.token)
            #expect((model["serving"] as? [String: String])?["production"] == "moderation@\(version)", "\(model.body)")

            // Site policy: flag from 0.4, hold from 0.5.
            let policy = try await app.send(.PUT, "v1/moderation/policy", json: #"{"flag_at":0.4,"hold_at":0.5,"block_at":null}"#, token: root.token)
            #expect(policy.status == .ok, "\(policy.body)")
            expectProblem(try await app.send(.PUT, "v1/moderation/policy", json: #"{"flag_at":0.9,"hold_at":0.5}"#, token: root.token),
                          .unprocessableEntity)

            let fine = try await app.post("are we still on for lunch at noon", in: group, by: ann)
            #expect(fine.status == .created)
            #expect(fine["moderation"] == nil)
            let spam = try await app.post("URGENT you have won cash, txt CLAIM to 80082 zebra", in: group, by: ann)
            #expect(spam.status == .created, "\(spam.body)")
            let mark = try #require(spam["moderation"] as? [String: Any])
            #expect(mark["state"] as? String == "held")
            #expect(mark["model"] as? String == "moderation@\(version)")
            #expect((mark["score"] as? Double ?? 0) >= 0.5)
            let spamID = try #require(spam.string("id")), spamSeq = try #require(spam["seq"] as? Int)

            // Ben sees the held message's place, not its text; search does not find it for him.
            let seen = try await app.send(.GET, "v1/conversations/\(group)/messages/\(spamSeq)", token: ben.token)
            #expect(seen["body"] == nil || seen["body"] is NSNull)
            #expect((seen["moderation"] as? [String: Any])?["state"] as? String == "held")
            #expect((seen["moderation"] as? [String: Any])?["score"] == nil)
            let bensSearch = try await app.send(.GET, "v1/search/messages?q=zebra", token: ben.token)
            #expect(bensSearch.status == .ok && bensSearch.items.isEmpty, "\(bensSearch.body)")
            #expect(try await app.send(.GET, "v1/search/messages?q=zebra", token: ann.token).items.count == 1)

            // Ben reports the lunch message (once); Ann may not report her own.
            let fineSeq = try #require(fine["seq"] as? Int), fineID = try #require(fine.string("id"))
            let reported = try await app.send(.POST, "v1/conversations/\(group)/messages/\(fineSeq)/reports", json: #"{"reason":"off topic"}"#, token: ben.token)
            #expect(reported.status == .created, "\(reported.body)")
            #expect(try await app.send(.POST, "v1/conversations/\(group)/messages/\(fineSeq)/reports", json: #"{"reason":"again"}"#, token: ben.token).status == .ok)
            expectProblem(try await app.send(.POST, "v1/conversations/\(group)/messages/\(fineSeq)/reports", json: #"{"reason":"x"}"#, token: ann.token),
                          .unprocessableEntity)

            // The queue, for moderators only.
            expectProblem(try await app.send(.GET, "v1/moderation/queue", token: ben.token), .forbidden)
            let queue = try await app.send(.GET, "v1/moderation/queue", token: mod.token)
            #expect(queue.status == .ok, "\(queue.body)")
            #expect(queue["total"] as? Int == 2)
            let queued = (queue["groups"] as? [[String: Any]] ?? []).flatMap { $0["items"] as? [[String: Any]] ?? [] }
            let held = try #require(queued.first { ($0["message"] as? [String: Any])?["id"] as? String == spamID })
            #expect((held["message"] as? [String: Any])?["body"] as? String == "URGENT you have won cash, txt CLAIM to 80082 zebra")
            let lunch = try #require(queued.first { ($0["message"] as? [String: Any])?["id"] as? String == fineID })
            #expect((lunch["reports"] as? [[String: Any]])?.first?["reason"] as? String == "off topic")

            // Approve the held one: everyone sees it whole. Remove the lunch one, with a reason.
            let approved = try await app.send(.POST, "v1/moderation/messages/\(spamID)/decision", json: #"{"action":"approve"}"#, token: mod.token)
            #expect(approved.status == .ok, "\(approved.body)")
            #expect(try await app.send(.GET, "v1/conversations/\(group)/messages/\(spamSeq)", token: ben.token).string("body")
                    == "URGENT you have won cash, txt CLAIM to 80082 zebra")
            expectProblem(try await app.send(.POST, "v1/moderation/messages/\(fineID)/decision", json: #"{"action":"remove"}"#, token: mod.token),
                          .unprocessableEntity)
            let removed = try await app.send(.POST, "v1/moderation/messages/\(fineID)/decision",
                                             json: #"{"action":"remove","reason":"spam wave"}"#, token: mod.token)
            #expect(removed.status == .ok, "\(removed.body)")
            #expect(removed["deleted_at"] != nil)
            expectProblem(try await app.send(.POST, "v1/moderation/messages/\(fineID)/decision",
                                             json: #"{"action":"approve"}"#, token: mod.token), .conflict)
            #expect(try await app.send(.GET, "v1/moderation/queue", token: mod.token)["total"] as? Int == 0)

            let audit = try await app.send(.GET, "v1/moderation/audit", token: mod.token)
            #expect(Set(audit.items.compactMap { $0["action"] as? String }) == ["moderation.approve", "moderation.remove", "moderation.policy"],
                    "\(audit.body)")
            #expect(audit.items.first { $0["action"] as? String == "moderation.remove" }?["reason"] as? String == "spam wave")
            let counts = try await TrainingExample.counts(of: "moderation", on: app.db)
            #expect(counts.positive == 31 && counts.negative == 31, "the two decisions became labelled examples")

            // Events: the held message whole for its author only, then its approval for all.
            let events = try await EventLog.events(after: 0, limit: 1000, on: app.db)
            let heldEvent = try #require(events.first { $0.type == .messageHeld })
            #expect(heldEvent.visibleTo?.wire == ann.id)
            let created = try #require(events.first { $0.type == .messageCreated && $0.payload.contains(spamID) })
            #expect(!created.payload.contains("zebra"), "the members' event carries no text of a held message")
            #expect(events.contains { $0.type == .messageApproved && $0.payload.contains("zebra") })
            // The members' events of a decision carry no score, as their reads show none.
            #expect(events.filter { $0.type == .messageApproved || $0.type == .messageDeleted }.allSatisfy { !$0.payload.contains(#""score""#) })

            // A conversation's override blocks: 422 naming the reason, and no seq is used.
            let override = try await app.send(.PUT, "v1/conversations/\(group)/moderation", json: #"{"flag_at":0.4,"hold_at":0.45,"block_at":0.5}"#,
                                              token: ann.token)
            #expect(override.status == .ok, "\(override.body)")
            expectProblem(try await app.send(.PUT, "v1/conversations/\(group)/moderation", json: #"{"block_at":0.5}"#, token: ben.token), .forbidden)
            let blocked = try await app.post("Free entry!! reply WIN for £1000 now", in: group, by: ann)
            expectProblem(blocked, .unprocessableEntity)
            #expect(blocked.fieldErrors == ["body": "blocked"])
            let next = try await app.post("can you send me the notes from today", in: group, by: ann)
            #expect(next["seq"] as? Int == spamSeq + 1)
        }
    }

    @Test("promotion archives the version it replaces, rollback restores it in one call and says why, and a damaged artifact is refused while the serving version keeps serving")
    func promotionRollbackAndDamage() async throws {
        try await withParley { app, _ in
            let root = try await Self.admin(app)
            let someone = try await app.user("someone")
            expectProblem(try await app.send(.GET, "v1/admin/models", token: someone.token), .forbidden)
            expectProblem(try await app.send(.GET, "v1/admin/models/recommendations", token: root.token), .notFound)
            expectProblem(try await app.send(.POST, "v1/admin/models/moderation/train", token: root.token), .unprocessableEntity)

            let first = try await Self.train(app, root, examples: Self.examples(40))
            // The endpoint queues training as a job.
            let queued = try await app.send(.POST, "v1/admin/models/moderation/train", token: root.token)
            #expect(queued.status == .accepted, "\(queued.body)")
            #expect(queued.string("job_id") != nil)
            let second = try await Self.train(app, root, examples: Self.examples(20, offset: 40))
            #expect(second == first + 1)

            let badStage = try await Self.stage(app, root, version: first, "live")
            expectProblem(badStage, .unprocessableEntity)
            #expect(badStage.fieldErrors == ["stage": "invalid"])
            expectProblem(try await Self.stage(app, root, version: 99, "production"), .notFound)
            expectProblem(try await app.send(.POST, "v1/admin/models/moderation/rollback", json: #"{"reason":" "}"#, token: root.token),
                          .unprocessableEntity)
            #expect(try await Self.stage(app, root, version: first, "production").status == .ok)
            let promoted = try await Self.stage(app, root, version: second, "production")
            #expect(promoted.status == .ok)
            #expect(promoted.string("previous_id") != nil)
            let versions = try await app.send(.GET, "v1/admin/models/moderation", token: root.token)
            let stages = Dictionary(uniqueKeysWithValues: ((versions["versions"] as? [[String: Any]]) ?? []).map { ($0["version"] as! Int, $0["stage"] as! String) })
            #expect(stages == [first: "archived", second: "production"])
            let serving = try #require(app.storage[ModelRegistryKey.self]).serving
            #expect(serving.snapshot()["moderation"]?[.production] == "moderation@\(second)")

            let rolledBack = try await app.send(.POST, "v1/admin/models/moderation/rollback", json: #"{"reason":"flags twice as many"}"#, token: root.token)
            #expect(rolledBack.status == .ok, "\(rolledBack.body)")
            #expect((rolledBack["rolled_back"] as? [String: Any])?["note"] as? String == "rolled back: flags twice as many")
            #expect((rolledBack["production"] as? [String: Any])?["version"] as? Int == first)
            #expect(serving.snapshot()["moderation"]?[.production] == "moderation@\(first)")
            expectProblem(try await app.send(.POST, "v1/admin/models/moderation/rollback", json: #"{"reason":"again"}"#, token: root.token), .conflict)

            // Damage the second version's artifact: promoting it is refused, the first keeps serving.
            try await (app.db as! any SQLDatabase).raw("""
                UPDATE model_versions SET artifact = \(bind: Data("not a model".utf8)) WHERE version = \(bind: second)
                """).run()
            let damaged = try await Self.stage(app, root, version: second, "production")
            expectProblem(damaged, .unprocessableEntity)
            #expect(damaged.body.contains("damaged-artifact"))
            #expect(serving.snapshot()["moderation"]?[.production] == "moderation@\(first)")
            // Even written straight into the registry, a node refuses it and keeps what it had.
            try await (app.db as! any SQLDatabase).raw("UPDATE model_versions SET stage = 'archived' WHERE version = \(bind: first)").run()
            try await (app.db as! any SQLDatabase).raw("UPDATE model_versions SET stage = 'production' WHERE version = \(bind: second)").run()
            await serving.refresh()
            #expect(serving.snapshot()["moderation"]?[.production] == "moderation@\(first)")
        }
    }
}
