import Fluent
import Foundation
import Learning
import NIOConcurrencyHelpers
import Vapor

/// The model versions this node scores with, loaded from the registry: for each model, its
/// production version and, when there is one, its canary and its shadow.
///
/// `refresh` reads which versions hold a serving stage and loads any it does not have: the
/// artifact's SHA-256 must match the registry's checksum and the file must decode (its own
/// CRC and format version), or the version is refused and whatever served that stage before
/// keeps serving. The whole set is swapped at once, so a message is never scored by a
/// half-loaded model. Every node refreshes when the registry signals `models` (PostgreSQL
/// NOTIFY reaches all of them) and once at start.
final class ModelServing: LifecycleHandler, Sendable {
    static let signal = "models"

    struct Served: Sendable {
        let id: UUID
        let label: String
        let stage: ModelVersion.Stage
        let checksum: String
        let classifier: TextClassifier
        /// What drift is measured against (from the version's evaluation report).
        let reference: DriftReference?
        /// When it took this stage.
        let since: Date
    }

    /// A score and who gave it.
    struct Score: Sendable {
        let probability: Double
        let version: Served
    }

    private let database: @Sendable () throws -> any Database
    /// The share of conversations (by a hash of their id, so a conversation stays on one
    /// side) a canary scores, in percent.
    let canaryPercent: Int
    private let logger: Logger
    private let metrics: ModelMetrics?
    /// The drift of what this node scores.
    let drift: ModelDrift
    private let served = NIOLockedValueBox<[String: [ModelVersion.Stage: Served]]>([:])
    private let refreshing = NIOLockedValueBox<(running: Bool, again: Bool)>((false, false))

    init(database: @escaping @Sendable () throws -> any Database, canaryPercent: Int, driftWindow: Int = 1000, metrics: ModelMetrics?,
         logger: Logger) {
        self.database = database
        self.canaryPercent = canaryPercent
        self.metrics = metrics
        drift = ModelDrift(capacity: driftWindow, minimum: min(100, driftWindow), metrics: metrics)
        self.logger = logger
    }

    /// The version that scores messages of `conversationID` for model `name`: the canary for
    /// its share of conversations, production for the rest; nil when none is deployed.
    func scorer(for name: String, conversationID: UUID) -> Served? {
        let stages = served.withLockedValue { $0[name] ?? [:] }
        if let canary = stages[.canary], Self.bucket(of: conversationID) < canaryPercent { return canary }
        return stages[.production]
    }

    /// The production version of a model, if one is deployed.
    func production(for name: String) -> Served? {
        served.withLockedValue { $0[name]?[.production] }
    }

    /// The shadow version of a model, if one is deployed.
    func shadow(for name: String) -> Served? {
        served.withLockedValue { $0[name]?[.shadow] }
    }

    /// What this node serves now, by model and stage (for the admin API and tests).
    func snapshot() -> [String: [ModelVersion.Stage: String]] {
        served.withLockedValue { $0.mapValues { $0.mapValues(\.label) } }
    }

    /// A stable 0..<100 for a conversation (FNV-1a of its id's bytes).
    static func bucket(of conversationID: UUID) -> Int {
        Int(StableHash.fnv1a64(conversationID.wire) % 100)
    }

    /// Scores `text` with `version`, counting it in the metrics and in the version's drift window.
    func score(_ text: String, with version: Served, model name: String) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        let counts = version.classifier.vectorizer.transform(text)
        let probability = version.classifier.probability(counts: counts)
        metrics?.observeScoring(model: name, version: version.label,
                                seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, score: probability)
        drift.observe(model: name, version: version.label, reference: version.reference,
                      .init(score: probability, length: text.count, unknownShare: version.classifier.unseenShare(counts: counts)))
        return probability
    }

    func didBootAsync(_ application: Application) async throws {
        await refresh()
    }

    /// Reads the registry's serving stages and loads what changed. Concurrent calls collapse
    /// into one more pass.
    func refresh() async {
        let start = refreshing.withLockedValue { state -> Bool in
            if state.running { state.again = true; return false }
            state.running = true
            return true
        }
        guard start else { return }
        while true {
            await load()
            let again = refreshing.withLockedValue { state -> Bool in
                if state.again { state.again = false; return true }
                state.running = false
                return false
            }
            if !again { return }
        }
    }

    private func load() async {
        let rows: [ModelVersion.Serving]
        let db: any Database
        do {
            db = try database()
            rows = try await ModelVersion.serving(on: db)
        } catch {
            logger.warning("could not read the model registry", metadata: ["error": .string(String(describing: error))])
            return
        }
        let current = served.withLockedValue { $0 }
        var next: [String: [ModelVersion.Stage: Served]] = [:]
        for row in rows {
            guard let stage = ModelVersion.Stage(rawValue: row.stage) else { continue }
            if let loaded = current.values.lazy.flatMap(\.values).first(where: { $0.id == row.id && $0.checksum == row.checksum }) {
                next[row.name, default: [:]][stage] = Served(id: loaded.id, label: loaded.label, stage: stage, checksum: loaded.checksum,
                                                            classifier: loaded.classifier, reference: loaded.reference,
                                                            since: row.stage_changed_at)
                continue
            }
            do {
                guard let stored = try await ModelVersion.find(row.id, on: db) else { continue }
                let classifier = try Self.open(stored.artifact, checksum: row.checksum)
                let report = try? ModelVersionDTO.reportDecoder.decode(EvaluationReport.self, from: Data(stored.report.utf8))
                next[row.name, default: [:]][stage] = Served(id: row.id, label: "\(row.name)@\(row.version)", stage: stage,
                                                            checksum: row.checksum, classifier: classifier, reference: report?.reference,
                                                            since: row.stage_changed_at)
                logger.info("model loaded", metadata: ["model": .string("\(row.name)@\(row.version)"), "stage": .string(row.stage)])
            } catch {
                // Keep serving what served this stage before.
                metrics?.countLoadFailure(model: row.name)
                logger.error("model version refused: its artifact is damaged", metadata: [
                    "model": .string("\(row.name)@\(row.version)"), "error": .string(String(describing: error))])
                if let previous = current[row.name]?[stage] { next[row.name, default: [:]][stage] = previous }
            }
        }
        served.withLockedValue { $0 = next }
        drift.retain(Set(next.values.flatMap(\.values).map(\.label)))
    }

    /// Checks an artifact against its checksum and decodes it.
    static func open(_ artifact: Data, checksum: String) throws -> TextClassifier {
        guard ModelVersion.checksum(artifact) == checksum else { throw ModelRegistryError.damagedArtifact("its checksum does not match") }
        do {
            return try ModelFile.decode(artifact)
        } catch {
            throw ModelRegistryError.damagedArtifact(String(describing: error))
        }
    }
}

struct ModelServingKey: StorageKey {
    typealias Value = ModelServing
}
