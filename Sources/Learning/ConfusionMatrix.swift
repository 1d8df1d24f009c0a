/// Counts of a binary classifier's outcomes, and the rates derived from them.
///
/// Rates whose denominator is zero are reported as 0, as scikit-learn does with
/// `zero_division=0`.
public struct ConfusionMatrix: Codable, Sendable, Equatable {
    /// Positives predicted positive.
    public var truePositives: Int
    /// Negatives predicted positive.
    public var falsePositives: Int
    /// Negatives predicted negative.
    public var trueNegatives: Int
    /// Positives predicted negative.
    public var falseNegatives: Int

    /// Creates a matrix from counts.
    public init(truePositives: Int, falsePositives: Int, trueNegatives: Int, falseNegatives: Int) {
        self.truePositives = truePositives
        self.falsePositives = falsePositives
        self.trueNegatives = trueNegatives
        self.falseNegatives = falseNegatives
    }

    /// Tallies parallel arrays of true and predicted labels.
    /// - Throws: ``LearningError/lengthMismatch(expected:actual:)``.
    public init(truth: [Bool], predicted: [Bool]) throws {
        guard truth.count == predicted.count else {
            throw LearningError.lengthMismatch(expected: truth.count, actual: predicted.count)
        }
        self.init(truePositives: 0, falsePositives: 0, trueNegatives: 0, falseNegatives: 0)
        for (actual, guess) in zip(truth, predicted) { record(actual: actual, predicted: guess) }
    }

    /// Adds one outcome.
    public mutating func record(actual: Bool, predicted: Bool) {
        switch (actual, predicted) {
        case (true, true): truePositives += 1
        case (false, true): falsePositives += 1
        case (false, false): trueNegatives += 1
        case (true, false): falseNegatives += 1
        }
    }

    /// The number of outcomes.
    public var total: Int { truePositives + falsePositives + trueNegatives + falseNegatives }

    /// `tp / (tp + fp)`, or 0 when nothing was predicted positive.
    public var precision: Double { Self.ratio(truePositives, truePositives + falsePositives) }

    /// `tp / (tp + fn)`, or 0 when there are no positives.
    public var recall: Double { Self.ratio(truePositives, truePositives + falseNegatives) }

    /// The harmonic mean of precision and recall, `2tp / (2tp + fp + fn)`, or 0 when undefined.
    public var f1: Double { Self.ratio(2 * truePositives, 2 * truePositives + falsePositives + falseNegatives) }

    /// The share of correct outcomes, or 0 for an empty matrix.
    public var accuracy: Double { Self.ratio(truePositives + trueNegatives, total) }

    /// `fp / (fp + tn)`, or 0 when there are no negatives.
    public var falsePositiveRate: Double { Self.ratio(falsePositives, falsePositives + trueNegatives) }

    private static func ratio(_ numerator: Int, _ denominator: Int) -> Double {
        denominator == 0 ? 0 : Double(numerator) / Double(denominator)
    }
}
