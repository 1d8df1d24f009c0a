import Crypto
import Fluent
import Foundation
import SQLKit
import Vapor

/// One trained version of a named model (`moderation`): how it was trained, on what, how it
/// scored, its artifact (a `Learning` model file) with a SHA-256 checksum, and its stage. The
/// owner of the `model_versions` table's SQL.
final class ModelVersion: Model, @unchecked Sendable {
    static let schema = "model_versions"

    enum Stage: String, Codable, Sendable, CaseIterable {
        /// Trained, serving nothing.
        case candidate
        /// Scores what production scores, with no effect, for comparison.
        case shadow
        /// Scores a stable share of conversations in production's place.
        case canary
        /// Scores everything else.
        case production
        /// Served once (or never), kept for its record and for rollback.
        case archived
    }

    @ID(key: .id) var id: UUID?
    @Field(key: "name") var name: String
    @Field(key: "version") var version: Int
    @Field(key: "algorithm") var algorithm: String
    /// JSON object of the settings training chose.
    @Field(key: "hyperparameters") var hyperparameters: String
    /// SHA-256 of the training examples (text and label, in a fixed order).
    @Field(key: "data_hash") var dataHash: String
    @Field(key: "example_count") var exampleCount: Int
    /// The evaluation report (`EvaluationReport` as JSON).
    @Field(key: "report") var report: String
    @OptionalField(key: "trained_by") var trainedBy: UUID?
    @Enum(key: "stage") var stage: Stage
    /// The production version this one replaced, for rollback.
    @OptionalField(key: "previous_id") var previousID: UUID?
    /// Why its stage last changed, when someone said (a rollback's reason).
    @OptionalField(key: "note") var note: String?
    @Field(key: "artifact") var artifact: Data
    @Field(key: "checksum") var checksum: String
    @Field(key: "created_at") var createdAt: Date
    @Field(key: "stage_changed_at") var stageChangedAt: Date

    init() {}

    init(name: String, version: Int, algorithm: String, hyperparameters: String, dataHash: String, exampleCount: Int,
         report: String, trainedBy: UUID?, artifact: Data, at now: Date) {
        self.id = UUID.timeOrdered()
        self.name = name
        self.version = version
        self.algorithm = algorithm
        self.hyperparameters = hyperparameters
        self.dataHash = dataHash
        self.exampleCount = exampleCount
        self.report = report
        self.trainedBy = trainedBy
        self.stage = .candidate
        self.artifact = artifact
        self.checksum = Self.checksum(artifact)
        self.createdAt = now
        self.stageChangedAt = now
    }

    /// `moderation@3`: how a message names the version that scored it.
    var label: String { "\(name)@\(version)" }

    static func checksum(_ artifact: Data) -> String {
        SHA256.hash(data: artifact).hexString
    }

    /// A version without its artifact (which may be megabytes).
    struct Summary: Decodable, Sendable {
        let id: UUID
        let name: String
        let version: Int
        let algorithm: String
        let hyperparameters: String
        let data_hash: String
        let example_count: Int
        let report: String
        let trained_by: UUID?
        let stage: String
        let previous_id: UUID?
        let note: String?
        let checksum: String
        let artifact_bytes: Int
        let created_at: Date
        let stage_changed_at: Date
    }

    private static let summaryColumns: SQLQueryString = """
        SELECT id, name, version, algorithm, hyperparameters, data_hash, example_count, report, trained_by, stage, previous_id,
               note, checksum, LENGTH(artifact) AS artifact_bytes, created_at, stage_changed_at FROM model_versions
        """

    /// The versions of a model, newest first, without their artifacts.
    static func versions(of name: String, on db: any Database) async throws -> [Summary] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw(summaryColumns + " WHERE name = \(bind: name) ORDER BY version DESC").all(decoding: Summary.self)
    }

    /// One version without its artifact.
    static func summary(name: String, version: Int, on db: any Database) async throws -> Summary? {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw(summaryColumns + " WHERE name = \(bind: name) AND version = \(bind: version)").first(decoding: Summary.self)
    }

    static func find(name: String, version: Int, on db: any Database) async throws -> ModelVersion? {
        try await ModelVersion.query(on: db).filter(\.$name == name).filter(\.$version == version).first()
    }

    /// The next version number of a model.
    static func nextVersion(of name: String, on db: any Database) async throws -> Int {
        (try await ModelVersion.query(on: db).filter(\.$name == name).max(\.$version) ?? 0) + 1
    }

    /// The names of every model with a version.
    static func names(on db: any Database) async throws -> [String] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let name: String }
        return try await sql.raw("SELECT DISTINCT name FROM model_versions ORDER BY name").all(decoding: Row.self).map(\.name)
    }

    /// What each node serves: the id, checksum and stage of every version in a serving stage.
    struct Serving: Decodable, Sendable, Equatable {
        let id: UUID
        let name: String
        let version: Int
        let stage: String
        let checksum: String
        let stage_changed_at: Date
    }

    static func serving(on db: any Database) async throws -> [Serving] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw("""
            SELECT id, name, version, stage, checksum, stage_changed_at FROM model_versions WHERE stage IN ('production', 'shadow', 'canary')
            """).all(decoding: Serving.self)
    }

    /// Moves the version in `stage` of `name` (if any) to `archived`, in the caller's transaction.
    static func vacate(_ stage: Stage, of name: String, at now: Date, on tx: any Database) async throws -> ModelVersion? {
        guard let holder = try await ModelVersion.query(on: tx).filter(\.$name == name).filter(\.$stage == stage).first() else {
            return nil
        }
        holder.stage = .archived
        holder.stageChangedAt = now
        try await holder.save(on: tx)
        return holder
    }
}
