import Crypto
import Fluent
import Foundation
import SQLKit

/// A labelled text a model trains on: seed data an operator imported, or a moderator's
/// decision on a message (which replaces an earlier label of the same message). The owner of
/// the `training_examples` table's SQL.
final class TrainingExample: Model, @unchecked Sendable {
    static let schema = "training_examples"

    enum Source: String, Codable, Sendable {
        /// Imported (`parley model train --data`, or the API).
        case seed
        /// A moderator approved (negative) or removed (positive) a message.
        case decision
    }

    @ID(key: .id) var id: UUID?
    @Field(key: "model_name") var modelName: String
    @Field(key: "text") var text: String
    /// True for the positive class (a message to stop).
    @Field(key: "label") var label: Bool
    @Enum(key: "source") var source: Source
    /// Unique per model: `message:<id>` for a decision, a digest of the text for seed data.
    @Field(key: "source_key") var sourceKey: String
    @Field(key: "created_at") var createdAt: Date
    /// For a decision: the version that scored the message (`moderation@3`) and its score, so
    /// each version's live precision and recall are known.
    @OptionalField(key: "scored_by") var scoredBy: String?
    @OptionalField(key: "score") var score: Double?

    init() {}

    /// An example to add.
    struct New: Sendable {
        var text: String
        var label: Bool
        var source: Source
        var key: String
        var scoredBy: String? = nil
        var score: Double? = nil
    }

    /// Adds examples; one whose key exists already replaces that one's text and label (a
    /// moderator changing their mind, or seed data imported twice). Returns how many it wrote.
    @discardableResult
    static func upsert(_ examples: [New], model: String, at now: Date, on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        for example in examples {
            try await sql.raw("""
                INSERT INTO training_examples (id, model_name, text, label, source, source_key, created_at, scored_by, score)
                VALUES (\(bind: UUID.timeOrdered()), \(bind: model), \(bind: example.text), \(bind: example.label), \(bind: example.source.rawValue),
                        \(bind: example.key), \(bind: now), \(bind: example.scoredBy), \(bind: example.score))
                ON CONFLICT (model_name, source_key) DO UPDATE SET text = excluded.text, label = excluded.label, source = excluded.source,
                    scored_by = excluded.scored_by, score = excluded.score
                """).run()
        }
        return examples.count
    }

    /// The key of a seed example: its label and text, so importing a file twice adds nothing.
    static func seedKey(text: String, label: Bool) -> String {
        "seed:" + SHA256.hash(data: Data(((label ? "1" : "0") + text).utf8)).hexString.prefix(32)
    }

    /// Every example of a model, in key order (so the data hash and the folds are reproducible).
    static func all(of model: String, on db: any Database) async throws -> [(text: String, label: Bool)] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let text: String; let label: Bool }
        return try await sql.raw("""
            SELECT text, label FROM training_examples WHERE model_name = \(bind: model) ORDER BY source_key
            """).all(decoding: Row.self).map { ($0.text, $0.label) }
    }

    /// How many examples of each class a model has.
    static func counts(of model: String, on db: any Database) async throws -> (positive: Int, negative: Int) {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let label: Bool; let n: Int }
        let rows = try await sql.raw("""
            SELECT label, COUNT(*) AS n FROM training_examples WHERE model_name = \(bind: model) GROUP BY label
            """).all(decoding: Row.self)
        return (rows.first { $0.label }?.n ?? 0, rows.first { !$0.label }?.n ?? 0)
    }

    /// How the versions that scored reviewed messages did, from the moderators' decisions: per
    /// version, the decisions counted by label (removed is positive) and by whether its score
    /// reached `threshold`.
    static func liveOutcomes(of model: String, threshold: Double, on db: any Database) async throws -> [String: LiveOutcomes] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let scored_by: String; let label: Bool; let predicted: Int; let n: Int }
        let rows = try await sql.raw("""
            SELECT scored_by, label, CASE WHEN score >= \(bind: threshold) THEN 1 ELSE 0 END AS predicted, COUNT(*) AS n
            FROM training_examples
            WHERE model_name = \(bind: model) AND source = \(bind: Source.decision.rawValue) AND scored_by IS NOT NULL AND score IS NOT NULL
            GROUP BY 1, 2, 3
            """).all(decoding: Row.self)
        var outcomes: [String: LiveOutcomes] = [:]
        for row in rows {
            switch (row.label, row.predicted == 1) {
            case (true, true): outcomes[row.scored_by, default: .init()].truePositives += row.n
            case (false, true): outcomes[row.scored_by, default: .init()].falsePositives += row.n
            case (true, false): outcomes[row.scored_by, default: .init()].falseNegatives += row.n
            case (false, false): outcomes[row.scored_by, default: .init()].trueNegatives += row.n
            }
        }
        return outcomes
    }
}

/// A version's confusion counts over the messages moderators reviewed. Only reviewed messages
/// count: held, flagged and reported ones, so recall here is recall among what people saw.
struct LiveOutcomes: Sendable, Equatable {
    var truePositives = 0
    var falsePositives = 0
    var falseNegatives = 0
    var trueNegatives = 0

    var reviewed: Int { truePositives + falsePositives + falseNegatives + trueNegatives }
    var precision: Double? { truePositives + falsePositives > 0 ? Double(truePositives) / Double(truePositives + falsePositives) : nil }
    var recall: Double? { truePositives + falseNegatives > 0 ? Double(truePositives) / Double(truePositives + falseNegatives) : nil }
    /// `2TP / (2TP + FP + FN)`: defined (0) for a version that flagged nothing but missed
    /// what moderators removed, where precision is not.
    var f1: Double? {
        let denominator = 2 * truePositives + falsePositives + falseNegatives
        return denominator > 0 ? Double(2 * truePositives) / Double(denominator) : nil
    }
}
