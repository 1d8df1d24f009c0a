import Crypto
import Foundation
import Learning

/// Trains a text classifier the way every version of `moderation` is trained, and evaluates it
/// honestly: every figure in the report comes from out-of-fold scores (5 stratified folds,
/// seeded), so no example is scored by a model that saw it. Pure computation: no database.
enum ModelTrainer {
    /// Why training could not start.
    enum Failure: Error, Equatable, CustomStringConvertible {
        case tooFewExamples(positive: Int, negative: Int)

        var description: String {
            switch self {
            case .tooFewExamples(let positive, let negative):
                "training needs at least \(ModelTrainer.minimumPerClass) examples of each class; there are \(positive) positive and \(negative) negative"
            }
        }
    }

    static let folds = 5
    static let seed: UInt64 = 20_261_206
    static let minimumPerClass = 5
    /// The score at or above which a version calls a message positive (its own decision; the
    /// moderation policies set their own thresholds on the same score).
    static let threshold = 0.5
    static let algorithm = "logistic-regression (L-BFGS) on TF-IDF of hashed word 1-2-grams and character 2-4-grams"
    /// The penalties the grid search tries; the best mean F1 wins.
    static let penalties: [Double] = [1e-5, 1e-4, 1e-3]

    struct Trained: Sendable {
        let classifier: TextClassifier
        let report: EvaluationReport
        let hyperparameters: [String: Double]
        let dataHash: String
    }

    static func vectorizer() throws -> HashingVectorizer {
        try HashingVectorizer(wordNGrams: 1...2, characterNGrams: 2...4, bucketBits: 18)
    }

    static func configuration(penalty: Double) -> LogisticRegression.Configuration {
        .init(penalty: .l2(penalty), classWeight: .balanced, solver: .lbfgs(memory: 10), tolerance: 1e-5)
    }

    /// SHA-256 over every example's label and text, in the given order.
    static func dataHash(_ examples: [(text: String, label: Bool)]) -> String {
        var hasher = SHA256()
        for example in examples {
            hasher.update(data: Data([example.label ? 1 : 0]))
            hasher.update(data: Data(example.text.utf8))
            hasher.update(data: Data([0]))
        }
        return hasher.finalize().hexString
    }

    static func train(_ examples: [(text: String, label: Bool)]) throws -> Trained {
        let texts = examples.map(\.text)
        let labels = examples.map(\.label)
        let positives = labels.filter { $0 }.count
        guard positives >= minimumPerClass, labels.count - positives >= minimumPerClass else {
            throw Failure.tooFewExamples(positive: positives, negative: labels.count - positives)
        }
        let vectorizer = try vectorizer()
        let counts = TextClassifier.hashedCounts(texts, vectorizer: vectorizer)
        let split = try StratifiedKFold(labels: labels, k: folds, seed: seed)

        // Grid search: the penalty with the best cross-validated F1 (regularisation chosen by
        // validation, never by training fit).
        var grid: [EvaluationReport.GridPoint] = []
        var best: (penalty: Double, probabilities: [Double], f1: Double)?
        for penalty in penalties {
            let probabilities = try TextClassifier.crossValidatedProbabilities(
                counts: counts, labels: labels, folds: split, vectorizer: vectorizer, sublinearTF: true,
                configuration: configuration(penalty: penalty))
            let f1 = try ClassificationMetrics.confusionMatrix(scores: probabilities, labels: labels, threshold: threshold).f1
            grid.append(.init(penalty: penalty, f1: f1))
            if best == nil || f1 > best!.f1 { best = (penalty, probabilities, f1) }
        }
        guard let best else { throw Failure.tooFewExamples(positive: positives, negative: labels.count - positives) }

        // The learning curve at the chosen penalty: training and validation F1 as the
        // training set grows (a wide gap is variance, two low lines are bias).
        let curve = try LearningCurve.compute(fractions: [0.1, 0.25, 0.5, 1.0], labels: labels, folds: split, seed: seed) { subset in
            let model = try TextClassifier.train(counts: subset.map { counts[$0] }, labels: subset.map { labels[$0] }, vectorizer: vectorizer,
                                                 sublinearTF: true, configuration: configuration(penalty: best.penalty))
            return { model.probability(counts: counts[$0]) >= threshold }
        }

        let classifier = try TextClassifier.train(counts: counts, labels: labels, vectorizer: vectorizer, sublinearTF: true,
                                                  configuration: configuration(penalty: best.penalty))
        // The reference drift is measured against is what the model does on text it has not
        // seen, as live messages are: its out-of-fold scores, and for each text the share of
        // its features that the other folds never had.
        var unseen = [Double](repeating: 0, count: counts.count)
        for fold in split.folds {
            let vocabulary = try FeatureVocabulary(documents: fold.training.lazy.map { counts[$0] }, dimension: vectorizer.dimension)
            for index in fold.validation { unseen[index] = vocabulary.unseenShare(counts[index]) }
        }
        let report = try EvaluationReport(outOfFold: best.probabilities, labels: labels, grid: grid, curve: curve,
                                          reference: DriftReference(scores: best.probabilities, texts: texts, unseenShares: unseen))
        return Trained(classifier: classifier, report: report, hyperparameters: ["l2": best.penalty, "threshold": threshold],
                       dataHash: dataHash(examples))
    }
}

/// How a version scored, from out-of-fold predictions: what the registry keeps with it and the
/// admin pages draw.
struct EvaluationReport: Codable, Sendable {
    struct GridPoint: Codable, Sendable { var penalty: Double; var f1: Double }
    struct CurvePoint: Codable, Sendable { var threshold: Double; var precision: Double; var recall: Double }
    struct LearningPoint: Codable, Sendable { var trainingSize: Double; var trainingF1: Double; var validationF1: Double }
    struct CalibrationBin: Codable, Sendable { var meanPredicted: Double; var observed: Double; var count: Int }
    struct Confusion: Codable, Sendable {
        var truePositives: Int, falsePositives: Int, trueNegatives: Int, falseNegatives: Int
    }

    var examples: Int
    var positives: Int
    var folds: Int
    var threshold: Double
    var confusion: Confusion
    var precision: Double
    var recall: Double
    var f1: Double
    var rocAUC: Double
    var averagePrecision: Double
    var brierScore: Double
    /// The lowest threshold whose precision reaches 0.95, if any does.
    var thresholdForPrecision95: Double?
    var grid: [GridPoint]
    var precisionRecall: [CurvePoint]
    var learningCurve: [LearningPoint]
    var calibration: [CalibrationBin]
    /// The reference distributions drift is measured against (each a histogram's bin shares):
    /// the model's out-of-fold scores, message length in characters, and the share of each
    /// text's features the other folds never had.
    var reference: DriftReference

    init(outOfFold scores: [Double], labels: [Bool], grid: [GridPoint], curve: [LearningCurve.Point], reference: DriftReference) throws {
        examples = labels.count
        positives = labels.filter { $0 }.count
        folds = ModelTrainer.folds
        threshold = ModelTrainer.threshold
        let matrix = try ClassificationMetrics.confusionMatrix(scores: scores, labels: labels, threshold: threshold)
        confusion = Confusion(truePositives: matrix.truePositives, falsePositives: matrix.falsePositives,
                              trueNegatives: matrix.trueNegatives, falseNegatives: matrix.falseNegatives)
        precision = matrix.precision
        recall = matrix.recall
        f1 = matrix.f1
        rocAUC = try ClassificationMetrics.rocAUC(scores: scores, labels: labels)
        averagePrecision = try ClassificationMetrics.averagePrecision(scores: scores, labels: labels)
        brierScore = try ClassificationMetrics.brierScore(probabilities: scores, labels: labels)
        thresholdForPrecision95 = try ThresholdSelector.threshold(forPrecision: 0.95, scores: scores, labels: labels)?.threshold
        self.grid = grid
        // At most 60 points of the curve, evenly spread over it.
        let full = try ClassificationMetrics.precisionRecallCurve(scores: scores, labels: labels)
        let stride = max(1, full.count / 60)
        precisionRecall = full.enumerated().filter { $0.offset % stride == 0 || $0.offset == full.count - 1 }
            .map { CurvePoint(threshold: $0.element.threshold, precision: $0.element.precision, recall: $0.element.recall) }
        learningCurve = curve.map { LearningPoint(trainingSize: $0.trainingSize, trainingF1: $0.trainingF1, validationF1: $0.validationF1) }
        calibration = try CalibrationCurve(probabilities: scores, labels: labels).bins.filter { $0.count > 0 }
            .map { CalibrationBin(meanPredicted: $0.meanPredicted, observed: $0.observedFrequency, count: $0.count) }
        self.reference = reference
    }
}

/// Reference distributions for drift, as histograms over fixed bins (each bin's share).
struct DriftReference: Codable, Sendable {
    /// Score bins: ten of width 0.1.
    var scores: [Double]
    /// Length bins (characters): edges below.
    var lengths: [Double]
    /// Unseen-feature-share bins, ten of width 0.1: for each text, the share of its features
    /// (words, word pairs, character n-grams) that no training text had.
    var unknownShares: [Double]

    /// How the reference was made: `out-of-fold` (scores and unseen shares on text the model
    /// being evaluated had not seen). Absent in reports of the first registry versions, whose
    /// reference was in-sample; those are not compared against.
    var basis: String?

    static let lengthEdges: [Double] = [10, 20, 40, 80, 160, 320, 640]
    static let outOfFold = "out-of-fold"

    init(scores: [Double], texts: [String], unseenShares: [Double]) {
        self.scores = Self.shares(scores.map(Self.unitBin), bins: 10)
        lengths = Self.shares(texts.map { Self.lengthBin($0.count) }, bins: Self.lengthEdges.count + 1)
        unknownShares = Self.shares(unseenShares.map(Self.unitBin), bins: 10)
        basis = Self.outOfFold
    }

    /// Whether drift can be measured against it: made out of fold, with the bins this build uses.
    var fits: Bool {
        basis == Self.outOfFold && scores.count == 10 && unknownShares.count == 10 && lengths.count == Self.lengthEdges.count + 1
    }

    /// The bin of a value in [0, 1]: ten of width 0.1, 1.0 in the last; not a number in the first.
    static func unitBin(_ value: Double) -> Int { value.isFinite ? min(9, max(0, Int(value * 10))) : 0 }

    /// The bin of a length in characters.
    static func lengthBin(_ length: Int) -> Int {
        lengthEdges.firstIndex { Double(length) < $0 } ?? lengthEdges.count
    }

    static func shares(_ bins: [Int], bins count: Int) -> [Double] {
        var counts = [Double](repeating: 0, count: count)
        for bin in bins { counts[bin] += 1 }
        let total = max(1, Double(bins.count))
        return counts.map { $0 / total }
    }
}
