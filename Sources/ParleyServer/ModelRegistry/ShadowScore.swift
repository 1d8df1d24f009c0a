import Fluent
import Foundation
import SQLKit

/// A shadow version's score of a message beside production's, for the comparison report. The
/// owner of the `model_shadow_scores` table's SQL.
final class ShadowScore: Model, @unchecked Sendable {
    static let schema = "model_shadow_scores"

    @ID(key: .id) var id: UUID?
    @Field(key: "model_name") var modelName: String
    @Field(key: "shadow_version") var shadowVersion: String
    @Field(key: "production_version") var productionVersion: String
    @Field(key: "message_id") var messageID: UUID
    @Field(key: "conversation_id") var conversationID: UUID
    @Field(key: "production_score") var productionScore: Double
    @Field(key: "shadow_score") var shadowScore: Double
    @Field(key: "created_at") var createdAt: Date

    init() {}

    struct New: Sendable {
        var model: String
        var shadowVersion: String
        var productionVersion: String
        var messageID: UUID
        var conversationID: UUID
        var productionScore: Double
        var shadowScore: Double
    }

    /// Stores scores in one statement (a message scored twice by one shadow keeps its first pair).
    static func insert(_ scores: [New], at now: Date, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        guard !scores.isEmpty else { return }
        var insert = sql.insert(into: schema)
            .columns("id", "model_name", "shadow_version", "production_version", "message_id", "conversation_id",
                     "production_score", "shadow_score", "created_at")
            .ignoringConflicts(with: ["shadow_version", "message_id"])
        for score in scores {
            insert = insert.values(UUID.timeOrdered(), score.model, score.shadowVersion, score.productionVersion, score.messageID, score.conversationID,
                                   score.productionScore, score.shadowScore, now)
        }
        try await insert.run()
    }

    /// How a shadow version compares with production on the messages both scored: at
    /// `threshold`, how often they agree, what the shadow would have flagged that production
    /// did not and the reverse, and the latest disagreements.
    static func comparison(of shadowVersion: String, threshold: Double, disagreements limit: Int,
                           on db: any Database) async throws -> ShadowComparison? {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Totals: Decodable {
            let n: Int
            let would_flag: Int?
            let would_clear: Int?
            let mean_difference: Double?
        }
        guard let totals = try await sql.raw("""
            SELECT COUNT(*) AS n,
                   SUM(CASE WHEN shadow_score >= \(bind: threshold) AND production_score < \(bind: threshold) THEN 1 ELSE 0 END) AS would_flag,
                   SUM(CASE WHEN shadow_score < \(bind: threshold) AND production_score >= \(bind: threshold) THEN 1 ELSE 0 END) AS would_clear,
                   AVG(ABS(shadow_score - production_score)) AS mean_difference
            FROM model_shadow_scores WHERE shadow_version = \(bind: shadowVersion)
            """).first(decoding: Totals.self), totals.n > 0 else { return nil }
        struct Row: Decodable {
            let message_id: UUID, conversation_id: UUID, production_version: String, production_score: Double, shadow_score: Double
            let created_at: Date
        }
        let rows = try await sql.raw("""
            SELECT message_id, conversation_id, production_version, production_score, shadow_score, created_at
            FROM model_shadow_scores
            WHERE shadow_version = \(bind: shadowVersion)
              AND ((shadow_score >= \(bind: threshold)) <> (production_score >= \(bind: threshold)))
            ORDER BY created_at DESC, message_id LIMIT \(bind: limit)
            """).all(decoding: Row.self)
        struct Production: Decodable { let production_version: String }
        let productions = try await sql.raw("""
            SELECT DISTINCT production_version FROM model_shadow_scores WHERE shadow_version = \(bind: shadowVersion)
            """).all(decoding: Production.self).map(\.production_version)
        let wouldFlag = totals.would_flag ?? 0, wouldClear = totals.would_clear ?? 0
        return ShadowComparison(
            version: shadowVersion, production: productions.sorted(), compared: totals.n,
            agreement: Double(totals.n - wouldFlag - wouldClear) / Double(totals.n), wouldFlag: wouldFlag, wouldClear: wouldClear,
            meanDifference: totals.mean_difference ?? 0, threshold: threshold,
            disagreements: rows.map {
                .init(messageID: $0.message_id.wire, conversationID: $0.conversation_id.wire, productionVersion: $0.production_version,
                      productionScore: $0.production_score, shadowScore: $0.shadow_score, at: $0.created_at)
            })
    }

    /// Forgets scores older than `date` (housekeeping).
    static func deleteOlder(than date: Date, on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let n: Int }
        let n = try await sql.raw("SELECT COUNT(*) AS n FROM model_shadow_scores WHERE created_at < \(bind: date)").first(decoding: Row.self)?.n ?? 0
        guard n > 0 else { return 0 }
        try await sql.raw("DELETE FROM model_shadow_scores WHERE created_at < \(bind: date)").run()
        return n
    }
}

/// A shadow version against production, on the same messages (the API's `shadow`).
struct ShadowComparison: Codable, Sendable, Equatable {
    struct Disagreement: Codable, Sendable, Equatable {
        var messageID: String
        var conversationID: String
        var productionVersion: String
        var productionScore: Double
        var shadowScore: Double
        var at: Date

        enum CodingKeys: String, CodingKey {
            case at
            case messageID = "message_id"
            case conversationID = "conversation_id"
            case productionVersion = "production_version"
            case productionScore = "production_score"
            case shadowScore = "shadow_score"
        }
    }

    var version: String
    /// The production versions it was compared with (more than one when production changed).
    var production: [String]
    var compared: Int
    /// The share of messages on the same side of the threshold.
    var agreement: Double
    /// Messages the shadow scored at or above the threshold and production below it.
    var wouldFlag: Int
    /// Messages production scored at or above the threshold and the shadow below it.
    var wouldClear: Int
    /// The mean absolute difference of the two scores.
    var meanDifference: Double
    var threshold: Double
    var disagreements: [Disagreement]

    enum CodingKeys: String, CodingKey {
        case version, production, compared, agreement, threshold, disagreements
        case wouldFlag = "would_flag"
        case wouldClear = "would_clear"
        case meanDifference = "mean_difference"
    }
}
