import AgentGraph
import Foundation
import Vapor

/// A model version as the admin API shows it; `report` only on the version's own page.
struct ModelVersionDTO: Content {
    var id: String
    var name: String
    var version: Int
    var algorithm: String
    var hyperparameters: [String: Double]
    var dataHash: String
    var exampleCount: Int
    var metrics: Metrics
    var trainedBy: String?
    var stage: String
    var previousID: String?
    var note: String?
    var checksum: String
    var artifactBytes: Int
    var createdAt: Date
    var stageChangedAt: Date
    /// How it did on the messages moderators reviewed (absent until one was).
    var live: Live?
    var report: JSONValue?
    /// On the version's own page: its comparison with production while (or since) it was a shadow.
    var shadow: ShadowComparison?
    /// On the version's own page, while this node serves it: its drift.
    var drift: ModelDrift.Report?

    struct Live: Content {
        var reviewed: Int
        var truePositives: Int
        var falsePositives: Int
        var falseNegatives: Int
        var trueNegatives: Int
        var precision: Double?
        var recall: Double?
        var f1: Double?

        init(_ outcomes: LiveOutcomes) {
            reviewed = outcomes.reviewed
            truePositives = outcomes.truePositives
            falsePositives = outcomes.falsePositives
            falseNegatives = outcomes.falseNegatives
            trueNegatives = outcomes.trueNegatives
            precision = outcomes.precision
            recall = outcomes.recall
            f1 = outcomes.f1
        }

        enum CodingKeys: String, CodingKey {
            case reviewed, precision, recall, f1
            case truePositives = "true_positives"
            case falsePositives = "false_positives"
            case falseNegatives = "false_negatives"
            case trueNegatives = "true_negatives"
        }
    }

    struct Metrics: Content {
        var precision: Double
        var recall: Double
        var f1: Double
        var rocAUC: Double
        var averagePrecision: Double

        enum CodingKeys: String, CodingKey {
            case precision, recall, f1
            case rocAUC = "roc_auc"
            case averagePrecision = "average_precision"
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, name, version, algorithm, hyperparameters, metrics, stage, note, checksum, report, live, shadow, drift
        case dataHash = "data_hash"
        case exampleCount = "example_count"
        case trainedBy = "trained_by"
        case previousID = "previous_id"
        case artifactBytes = "artifact_bytes"
        case createdAt = "created_at"
        case stageChangedAt = "stage_changed_at"
    }

    /// Reports are stored as Swift encodes them; the API shows them with snake_case keys.
    static let reportEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    static let reportDecoder = JSONDecoder()

    private static let wireEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    init(_ summary: ModelVersion.Summary, withReport: Bool, live: LiveOutcomes? = nil) throws {
        let report = try Self.reportDecoder.decode(EvaluationReport.self, from: Data(summary.report.utf8))
        id = summary.id.wire
        name = summary.name
        version = summary.version
        algorithm = summary.algorithm
        hyperparameters = (try? JSONDecoder().decode([String: Double].self, from: Data(summary.hyperparameters.utf8))) ?? [:]
        dataHash = summary.data_hash
        exampleCount = summary.example_count
        metrics = Metrics(precision: report.precision, recall: report.recall, f1: report.f1, rocAUC: report.rocAUC,
                          averagePrecision: report.averagePrecision)
        trainedBy = summary.trained_by?.wire
        stage = summary.stage
        previousID = summary.previous_id?.wire
        note = summary.note
        checksum = summary.checksum
        artifactBytes = summary.artifact_bytes
        createdAt = summary.created_at
        stageChangedAt = summary.stage_changed_at
        self.live = live.map(Live.init)
        self.report = withReport ? try JSONDecoder().decode(JSONValue.self, from: Self.wireEncoder.encode(report)) : nil
    }
}

/// A model: its versions, newest first, what this node serves, production's drift on this
/// node, the shadow's comparison with production, and what the registry advises.
struct ModelDTO: Content {
    var name: String
    var versions: [ModelVersionDTO]
    /// Stage → version label this node scores with now.
    var serving: [String: String]
    var drift: ModelDrift.Report?
    var shadow: ShadowComparison?
    var advice: [ModelAdvice]
}

struct StageRequest: Content {
    var stage: String
    var note: String?
}

struct RollbackRequest: Content {
    var reason: String
}

struct ExamplesRequest: Content {
    struct Example: Content {
        var text: String
        var label: Bool
    }
    var examples: [Example]
}

struct ExamplesResponse: Content {
    var added: Int
}

struct TrainingResponse: Content {
    var jobID: String

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
    }
}

struct RollbackResponse: Content {
    var rolledBack: ModelVersionDTO
    var production: ModelVersionDTO

    enum CodingKeys: String, CodingKey {
        case production
        case rolledBack = "rolled_back"
    }
}
