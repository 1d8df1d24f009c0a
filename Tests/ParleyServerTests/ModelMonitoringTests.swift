import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Learning
import Prometheus
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

/// Watching deployed models: drift against the training reference, a shadow's comparison with
/// production, live metrics from moderators' decisions and the advice they give, and the
/// reports' pictures.
@Suite("Model monitoring")
struct ModelMonitoringTests {
    /// A reference with half its scores in the lowest bin and half in the highest, every text
    /// 10-19 characters long and no unseen features.
    static let reference = DriftReference(scores: [0.05, 0.95], texts: ["0123456789ab", "0123456789ab"], unseenShares: [0, 0])

    @Test("PSI over the window is the hand-worked value, waits for the minimum, and follows the window as it slides")
    func driftWindow() throws {
        let drift = ModelDrift(capacity: 100, minimum: 50, metrics: nil)
        let low = ModelDrift.Observation(score: 0.01, length: 12, unknownShare: 0)
        let high = ModelDrift.Observation(score: 0.99, length: 12, unknownShare: 0)
        #expect(drift.report(for: "m@1") == nil)
        for _ in 0..<49 { drift.observe(model: "m", version: "m@1", reference: Self.reference, low) }
        let early = try #require(drift.report(for: "m@1"))
        #expect(early.window == 49)
        #expect(early.features.allSatisfy { $0.psi == nil }, "no PSI before the minimum")
        for _ in 0..<51 { drift.observe(model: "m", version: "m@1", reference: Self.reference, low) }
        // All scores in bin 0 against a reference of half in bin 0 and half in bin 9: the empty
        // bin counts as 1e-4, the bins empty on both sides add nothing.
        let expected = (1 - 0.5) * log(1 / 0.5) + (1e-4 - 0.5) * log(1e-4 / 0.5)
        let full = try #require(drift.report(for: "m@1"))
        let score = try #require(full.features.first { $0.feature == "score" })
        #expect(abs((score.psi ?? 0) - expected) < 1e-12)
        #expect(score.current == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(score.reference == [0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0.5])
        #expect(full.features.first { $0.feature == "length" }?.psi == 0, "lengths match the reference")
        #expect(full.features.first { $0.feature == "unknown_share" }?.psi == 0)
        #expect(full.alert)

        // A hundred high scores push every low one out of the window: the mirror image, same PSI.
        for _ in 0..<100 { drift.observe(model: "m", version: "m@1", reference: Self.reference, high) }
        let slid = try #require(drift.report(for: "m@1"))
        #expect(slid.window == 100)
        #expect(slid.features.first { $0.feature == "score" }?.current.last == 1)
        #expect(abs((slid.features.first { $0.feature == "score" }?.psi ?? 0) - expected) < 1e-12)
        // Half and half again: no drift.
        for _ in 0..<50 { drift.observe(model: "m", version: "m@1", reference: Self.reference, low) }
        let balanced = try #require(drift.report(for: "m@1"))
        #expect(abs(balanced.features.first { $0.feature == "score" }?.psi ?? 1) < 1e-12)
        #expect(!balanced.alert)

        // The window's size is a setting, refused outside 100...1000000.
        #expect(try Settings.load(from: ["PARLEY_MODEL_DRIFT_WINDOW": "5000"]).modelDriftWindow == 5000)
        for bad in ["99", "2000000", "many"] {
            #expect(throws: SettingsError.self) { try Settings.load(from: ["PARLEY_MODEL_DRIFT_WINDOW": bad]) }
        }

        drift.retain(["m@2"])
        #expect(drift.report(for: "m@1") == nil, "a version no longer served is forgotten")
        drift.observe(model: "m", version: "m@1", reference: Self.reference, low)
        #expect(drift.report(for: "m@1") == nil, "a message scored just before the change does not bring its window back")
    }

    @Test("drift gauges are exported while a version serves and removed when it stops; a reference from before out-of-fold references, or a score that is not a number, is handled")
    func driftGaugesAndOddInputs() throws {
        let registry = PrometheusCollectorRegistry()
        let drift = ModelDrift(capacity: 100, minimum: 50, metrics: ModelMetrics(registry: registry))
        for _ in 0..<50 { drift.observe(model: "m", version: "m@1", reference: Self.reference, .init(score: 0.01, length: 12, unknownShare: 0)) }
        #expect(registry.emitToString().contains(#"parley_model_drift_psi{model="m",version="m@1",feature="score"}"#))
        drift.retain(["m@2"])
        #expect(!registry.emitToString().contains(#"version="m@1""#), "no gauge is left for a version no longer served")

        // A report written before references were made out of fold is not compared against.
        var old = Self.reference
        old.basis = nil
        drift.observe(model: "m", version: "m@2", reference: old, .init(score: 0.5, length: 12, unknownShare: 0))
        #expect(drift.report(for: "m@2") == nil)
        // Not a number counts in the lowest bin rather than trapping.
        let odd = ModelDrift.Observation(score: .nan, length: 12, unknownShare: .infinity)
        #expect(odd.score == 0 && odd.unknownShare == 0)
    }

    @Test("the share of unseen features counts each feature's weight, and the reference's comes from the other folds")
    func unseenFeatures() throws {
        let training = [try SparseVector(dimension: 8, indices: [1, 3], values: [1, 2])]
        let vocabulary = try FeatureVocabulary(documents: training, dimension: 8)
        #expect(vocabulary.contains(1) && vocabulary.contains(3) && !vocabulary.contains(2))
        // Weights 2 (seen) + 1 (unseen) + 1 (unseen): half unseen; alternate signs count by size.
        #expect(vocabulary.unseenShare(try SparseVector(dimension: 8, indices: [1, 5, 6], values: [2, -1, 1])) == 0.5)
        #expect(vocabulary.unseenShare(SparseVector(zeros: 8)) == 0)
        #expect(vocabulary.unseenShare(SparseVector(zeros: 4)) == 1)
        let tfidf = try TFIDFTransformer.fit(training, dimension: 8)
        #expect(tfidf.vocabulary == vocabulary)

        // Texts of random letters share almost no features: against the folds it was not in,
        // most of each text is unseen, although the final model has seen all of every one.
        var random = SeededGenerator(seed: 7)
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let texts = (0..<40).map { _ in String((0..<30).map { _ in letters[Int(random.next() % 26)] }) }
        let trained = try ModelTrainer.train(texts.enumerated().map { ($0.element, $0.offset % 2 == 0) })
        let shares = trained.report.reference.unknownShares
        #expect(abs(shares.reduce(0, +) - 1) < 1e-9)
        #expect(shares[5...].reduce(0, +) > 0.9, "most texts are mostly unseen out of fold: \(shares)")
        let counts = trained.classifier.vectorizer.transform(texts[0])
        #expect(trained.classifier.unseenShare(counts: counts) == 0, "the final model saw every training text")
    }

    @Test("advice: roll back a production version whose live F1 is below its predecessor's, archive or promote a canary by its live F1, retrain on drift, and nothing on too few reviews")
    func advice() {
        let one = UUID(), two = UUID(), three = UUID()
        let good = LiveOutcomes(truePositives: 18, falsePositives: 2, falseNegatives: 2, trueNegatives: 10)
        let poor = LiveOutcomes(truePositives: 8, falsePositives: 12, falseNegatives: 6, trueNegatives: 4)
        let versions = [ModelAdvice.Version(id: one, label: "m@1", stage: .archived, previousID: nil),
                        .init(id: two, label: "m@2", stage: .production, previousID: one),
                        .init(id: three, label: "m@3", stage: .canary, previousID: nil)]
        let rollback = ModelAdvice.advise(versions, live: ["m@1": good, "m@2": poor, "m@3": good], drift: nil)
        #expect(rollback.map(\.action) == [.rollback, .promote])
        #expect(rollback[0].version == "m@2")
        #expect(rollback[0].reason.contains("live F1 is 0.47 over 30 reviewed messages"), "\(rollback[0].reason)")
        #expect(rollback[0].reason.contains("below m@1's 0.90"), "\(rollback[0].reason)")
        #expect(rollback[0].reason.contains("restores m@1"))
        #expect(ModelAdvice.advise(versions, live: ["m@1": poor, "m@2": good, "m@3": poor], drift: nil).map(\.action) == [.archive])
        // A version that flags nothing while moderators remove what it let through has F1 0, not none.
        let blind = LiveOutcomes(truePositives: 0, falsePositives: 0, falseNegatives: 20, trueNegatives: 5)
        #expect(blind.f1 == 0 && blind.precision == nil)
        #expect(ModelAdvice.advise(versions, live: ["m@1": good, "m@2": blind], drift: nil).map(\.action) == [.rollback])
        let few = LiveOutcomes(truePositives: 1, falsePositives: 5, falseNegatives: 0, trueNegatives: 0)
        #expect(ModelAdvice.advise(versions, live: ["m@1": good, "m@2": few, "m@3": few], drift: nil).isEmpty)

        let drift = ModelDrift(capacity: 100, minimum: 10, metrics: nil)
        for _ in 0..<10 { drift.observe(model: "m", version: "m@2", reference: Self.reference, .init(score: 0.5, length: 900, unknownShare: 0.6)) }
        let retrain = ModelAdvice.advise(versions, live: [:], drift: drift.report(for: "m@2"))
        #expect(retrain.map(\.action) == [.retrain])
        #expect(retrain[0].reason.contains("length PSI"), "\(retrain[0].reason)")
    }

    /// Sends `texts` to `conversation` by `author`; returns the messages' ids.
    static func send(_ texts: [String], in conversation: String, by author: TestUser, _ app: Application) async throws -> [String] {
        var ids: [String] = []
        for text in texts {
            let sent = try await app.post(text, in: conversation, by: author)
            #expect(sent.status == .created, "\(sent.body)")
            ids.append(try #require(sent.string("id")))
        }
        return ids
    }

    static func decide(_ ids: [String], _ action: String, by moderator: TestUser, _ app: Application) async throws {
        for id in ids {
            let decided = try await app.send(.POST, "v1/moderation/messages/\(id)/decision",
                                             json: #"{"action":"\#(action)","reason":"test decision"}"#, token: moderator.token)
            #expect(decided.status == .ok, "\(decided.body)")
        }
    }

    static func wellFormed(_ svg: String) -> Bool {
        XMLParser(data: Data(svg.utf8)).parse()
    }

    @Test("through the API: a shadow's comparison with production, production's drift, live metrics from decisions, rollback advised with its reason, and the reports as SVG")
    func monitoringThroughTheAPI() async throws {
        try await withParley({ $0.modelDriftWindow = 100 }) { app, _ in
            let root = try await ModerationTests.admin(app)
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let group = try await app.conversation(ann, members: [ben])
            let first = try await ModerationTests.train(app, root, examples: ModerationTests.examples(60))
            let second = try await ModerationTests.train(app, root, examples: ModerationTests.examples(20, offset: 60))
            #expect(try await ModerationTests.stage(app, root, version: first, "production").status == .ok)
            #expect(try await ModerationTests.stage(app, root, version: second, "shadow").status == .ok)
            let serving = try #require(app.storage[ModelRegistryKey.self]).serving
            #expect(serving.shadow(for: "moderation")?.label == "moderation@\(second)")

            // Nothing scored yet: no drift, no comparison, no picture of drift.
            let quiet = try await app.send(.GET, "v1/admin/models/moderation", token: root.token)
            #expect(quiet.status == .ok && quiet["drift"] == nil && quiet["shadow"] == nil, "\(quiet.body)")
            #expect((quiet["advice"] as? [Any])?.isEmpty == true)
            expectProblem(try await app.send(.GET, "v1/admin/models/moderation/charts/drift.svg", token: root.token), .notFound)

            // Ten messages, half of them spam: production scores them as they are sent, the
            // shadow after, from the event log.
            let examples = ModerationTests.examples(20, offset: 100)
            let spam = examples.filter(\.label).map(\.text), ham = examples.filter { !$0.label }.map(\.text)
            let spamIDs = try await Self.send(Array(spam.prefix(5)), in: group, by: ann, app)
            let hamIDs = try await Self.send(Array(ham.prefix(5)), in: group, by: ann, app)
            let follower = try #require(app.storage[ShadowFollowerKey.self])
            while try await follower.followOnce() {}
            let compared = try await app.send(.GET, "v1/admin/models/moderation", token: root.token)
            let shadow = try #require(compared["shadow"] as? [String: Any], "\(compared.body)")
            #expect(shadow["version"] as? String == "moderation@\(second)")
            #expect(shadow["production"] as? [String] == ["moderation@\(first)"])
            #expect(shadow["compared"] as? Int == 10)
            let agreement = try #require(shadow["agreement"] as? Double)
            let differing = (shadow["would_flag"] as? Int ?? -1) + (shadow["would_clear"] as? Int ?? -1)
            #expect(agreement == Double(10 - differing) / 10)
            #expect((shadow["disagreements"] as? [Any])?.count == differing)
            // Each side's score is the one its version gives.
            struct Stored: Decodable { let production_score: Double; let shadow_score: Double }
            let firstSpam = try #require(UUID(uuidString: spamIDs[0]))
            let stored = try #require(try await (app.db as! any SQLDatabase).raw("""
                SELECT production_score, shadow_score FROM model_shadow_scores WHERE message_id = \(bind: firstSpam)
                """).first(decoding: Stored.self))
            #expect(stored.shadow_score == serving.shadow(for: "moderation")?.classifier.predictProbability(spam[0]))
            #expect(stored.production_score == serving.production(for: "moderation")?.classifier.predictProbability(spam[0]))
            let drift = try #require(compared["drift"] as? [String: Any], "\(compared.body)")
            #expect(drift["version"] as? String == "moderation@\(first)")
            #expect(drift["window"] as? Int == 10)
            #expect(drift["capacity"] as? Int == 100)
            #expect((drift["features"] as? [[String: Any]])?.allSatisfy { $0["psi"] == nil } == true, "no PSI before 100 messages")
            // Followed again from the start, the same messages are not compared twice.
            try await (app.db as! any SQLDatabase).raw("UPDATE event_cursors SET position = 0 WHERE name = 'shadow'").run()
            let again = ShadowScoring.follower(serving: serving, database: { app.db }, writes: try #require(app.storage[ChatKey.self]).writes,
                                               domainEvents: try #require(app.storage[DomainEventsKey.self]),
                                               clock: try #require(app.storage[ChatKey.self]).clock, logger: app.logger)
            while try await again.followOnce() {}
            let twice = try await app.send(.GET, "v1/admin/models/moderation", token: root.token)
            #expect((twice["shadow"] as? [String: Any])?["compared"] as? Int == 10)

            // Moderators decide: production got these right (spam removed, the rest approved).
            try await Self.decide(spamIDs + Array(try await Self.send(Array(spam.suffix(5)), in: group, by: ann, app)), "remove", by: root, app)
            try await Self.decide(hamIDs + Array(try await Self.send(Array(ham.suffix(5)), in: group, by: ann, app)), "approve", by: root, app)
            // The second version goes to production; its messages are decided against its scores.
            #expect(try await ModerationTests.stage(app, root, version: second, "production").status == .ok)
            let more = ModerationTests.examples(40, offset: 200)
            let secondSpam = try await Self.send(more.filter(\.label).map(\.text), in: group, by: ann, app)
            let secondHam = try await Self.send(more.filter { !$0.label }.map(\.text), in: group, by: ann, app)
            try await Self.decide(Array(secondSpam.prefix(10)), "approve", by: root, app)
            try await Self.decide(Array(secondHam.prefix(10)), "remove", by: root, app)

            let advised = try await app.send(.GET, "v1/admin/models/moderation", token: root.token)
            let versions = try #require(advised["versions"] as? [[String: Any]])
            let firstLive = try #require(versions.first { $0["version"] as? Int == first }?["live"] as? [String: Any], "\(advised.body)")
            let secondLive = try #require(versions.first { $0["version"] as? Int == second }?["live"] as? [String: Any])
            #expect(firstLive["reviewed"] as? Int == 20)
            #expect(firstLive["f1"] as? Double == 1, "\(firstLive)")
            #expect(secondLive["reviewed"] as? Int == 20)
            #expect(secondLive["f1"] as? Double == 0, "\(secondLive)")
            let advice = try #require((advised["advice"] as? [[String: Any]])?.first { $0["action"] as? String == "rollback" }, "\(advised.body)")
            #expect(advice["version"] as? String == "moderation@\(second)")
            let reason = try #require(advice["reason"] as? String)
            #expect(reason.contains("below moderation@\(first)'s 1.00 over 20"), "\(reason)")
            // Rolled back in one call, with the advice's reason.
            let rolledBack = try await app.send(.POST, "v1/admin/models/moderation/rollback", json: #"{"reason":\#(jsonString(reason))}"#,
                                                token: root.token)
            #expect(rolledBack.status == .ok, "\(rolledBack.body)")
            #expect((rolledBack["production"] as? [String: Any])?["version"] as? Int == first)

            // Restored, the first version starts a new window. A hundred messages fill it, and
            // long messages it never saw the like of push length's PSI over the threshold.
            _ = try await Self.send((0..<100).map { "the minutes of today's meeting, item \($0): " + String(repeating: "budget review ", count: 60) },
                                    in: group, by: ann, app)
            let drifted = try await app.send(.GET, "v1/admin/models/moderation", token: root.token)
            let report = try #require(drifted["drift"] as? [String: Any], "\(drifted.body)")
            #expect(report["window"] as? Int == 100)
            let length = try #require((report["features"] as? [[String: Any]])?.first { $0["feature"] as? String == "length" })
            #expect((length["psi"] as? Double ?? 0) >= ModelDrift.alertThreshold, "\(length)")
            #expect(report["alert"] as? Bool == true)
            #expect((drifted["advice"] as? [[String: Any]])?.contains { $0["action"] as? String == "retrain" } == true, "\(drifted.body)")
            let metrics = try await app.testing().sendRequest(.GET, "metrics")
            #expect(metrics.body.string.contains(#"parley_model_drift_psi{model="moderation",version="moderation@\#(first)",feature="length"}"#),
                    "the drift gauges are exported")

            // The pictures: well-formed SVG, for administrators only.
            for chart in ["confusion", "precision-recall", "learning-curve", "calibration"] {
                let picture = try await app.send(.GET, "v1/admin/models/moderation/versions/\(first)/charts/\(chart).svg", token: root.token)
                #expect(picture.status == .ok, "\(chart): \(picture.body)")
                #expect(picture.headers.contentType?.subType == "svg+xml")
                #expect(picture.body.hasPrefix("<svg") && Self.wellFormed(picture.body), "\(chart)")
            }
            let confusion = try await app.send(.GET, "v1/admin/models/moderation/versions/\(first)/charts/confusion.svg", token: root.token)
            #expect(confusion.body.contains("true positives") && confusion.body.contains("moderation@\(first): confusion matrix"))
            let driftPicture = try await app.send(.GET, "v1/admin/models/moderation/charts/drift.svg", token: root.token)
            #expect(driftPicture.status == .ok && Self.wellFormed(driftPicture.body))
            #expect(driftPicture.body.contains("length: PSI") && driftPicture.body.contains("(alert)"))
            expectProblem(try await app.send(.GET, "v1/admin/models/moderation/versions/\(first)/charts/roc.svg", token: root.token), .notFound)
            expectProblem(try await app.send(.GET, "v1/admin/models/moderation/versions/\(first)/charts/confusion.svg", token: ben.token), .forbidden)

            // The version's own page: its live metrics, its shadow comparison, its drift.
            let page = try await app.send(.GET, "v1/admin/models/moderation/versions/\(second)", token: root.token)
            #expect((page["shadow"] as? [String: Any])?["compared"] as? Int == 10, "\(page.body)")
            #expect((page["live"] as? [String: Any])?["reviewed"] as? Int == 20)
            #expect(page["drift"] == nil, "the second version no longer serves")
        }
    }
}
