import Foundation

/// Multinomial naive Bayes over non-negative count (or tf-idf) features, with
/// Lidstone smoothing (`alpha = 1` is Laplace smoothing), as scikit-learn's `MultinomialNB`.
public struct MultinomialNaiveBayes: Codable, Sendable, Equatable {
    /// The smoothing pseudo-count added to every feature count.
    public let alpha: Double
    /// `ln P(class)` for classes `0..<classCount`.
    public let classLogPriors: [Double]
    /// `ln P(feature | class)`, one row per class.
    public let featureLogProbabilities: [[Double]]

    /// The number of classes.
    public var classCount: Int { classLogPriors.count }

    /// Fits the model.
    /// - Parameters:
    ///   - labels: class indices in `0..<classCount`.
    ///   - classCount: defaults to the largest label plus one.
    /// - Throws: ``LearningError`` for empty or mismatched input, negative features,
    ///   labels out of range, or `alpha <= 0`.
    public static func fit(_ examples: [SparseVector], labels: [Int], classCount: Int? = nil, alpha: Double = 1) throws -> MultinomialNaiveBayes {
        guard let first = examples.first else { throw LearningError.emptyInput("examples") }
        guard labels.count == examples.count else {
            throw LearningError.lengthMismatch(expected: examples.count, actual: labels.count)
        }
        guard alpha > 0, alpha.isFinite else { throw LearningError.invalidArgument("alpha must be positive and finite") }
        let classes = classCount ?? ((labels.max() ?? 0) + 1)
        guard classes >= 1 else { throw LearningError.invalidArgument("classCount must be at least 1") }
        let dimension = first.dimension
        var counts = [[Double]](repeating: [Double](repeating: 0, count: dimension), count: classes)
        var classTotals = [Double](repeating: 0, count: classes)
        for (example, label) in zip(examples, labels) {
            guard example.dimension == dimension else {
                throw LearningError.dimensionMismatch(expected: dimension, actual: example.dimension)
            }
            guard (0..<classes).contains(label) else { throw LearningError.invalidArgument("label \(label) outside 0..<\(classes)") }
            classTotals[label] += 1
            for (k, index) in example.indices.enumerated() {
                let value = example.values[k]
                guard value >= 0 else { throw LearningError.invalidArgument("multinomial naive Bayes needs non-negative features") }
                counts[label][index] += value
            }
        }
        let n = Double(examples.count)
        // A class absent from training gets prior 0 (log = -inf), matching its empirical frequency.
        let priors = classTotals.map { log($0 / n) }
        let logProbabilities = counts.map { row -> [Double] in
            let denominator = log(row.reduce(0, +) + alpha * Double(dimension))
            return row.map { log($0 + alpha) - denominator }
        }
        return MultinomialNaiveBayes(alpha: alpha, classLogPriors: priors, featureLogProbabilities: logProbabilities)
    }

    private init(alpha: Double, classLogPriors: [Double], featureLogProbabilities: [[Double]]) {
        self.alpha = alpha
        self.classLogPriors = classLogPriors
        self.featureLogProbabilities = featureLogProbabilities
    }

    /// `ln P(class) + Σ x_j ln P(feature j | class)` per class.
    public func jointLogLikelihood(_ x: SparseVector) -> [Double] {
        (0..<classCount).map { c in classLogPriors[c] + x.dot(featureLogProbabilities[c]) }
    }

    /// Posterior class probabilities.
    public func predictProbabilities(_ x: SparseVector) -> [Double] {
        let joint = jointLogLikelihood(x)
        let top = joint.max() ?? 0
        guard top.isFinite else { return [Double](repeating: 1 / Double(max(1, classCount)), count: classCount) }
        let exponentials = joint.map { exp($0 - top) }
        let sum = exponentials.reduce(0, +)
        return exponentials.map { $0 / sum }
    }

    /// The posterior probability of class 1 (the positive class of a binary model).
    public func predictProbability(_ x: SparseVector) -> Double {
        let probabilities = predictProbabilities(x)
        return probabilities.count > 1 ? probabilities[1] : 0
    }

    /// The most probable class (the lowest index on ties).
    public func predict(_ x: SparseVector) -> Int {
        let joint = jointLogLikelihood(x)
        var best = 0
        for c in joint.indices where joint[c] > joint[best] { best = c }
        return best
    }
}
