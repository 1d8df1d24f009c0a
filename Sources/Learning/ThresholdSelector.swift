/// Picks a decision threshold from validation scores.
public enum ThresholdSelector {
    /// A chosen threshold and the precision and recall it gave on the scores.
    public struct Choice: Sendable, Equatable {
        /// Predict positive when `score >= threshold`.
        public let threshold: Double
        /// Precision at the threshold.
        public let precision: Double
        /// Recall at the threshold.
        public let recall: Double

        /// Creates a choice, e.g. to persist or compare one.
        public init(threshold: Double, precision: Double, recall: Double) {
            self.threshold = threshold
            self.precision = precision
            self.recall = recall
        }
    }

    /// The threshold with the best recall among those whose precision is at least
    /// `targetPrecision`; among equal recalls the higher precision, then the higher
    /// threshold, wins. Returns `nil` if no threshold reaches the target.
    /// - Throws: ``LearningError`` for empty or mismatched input.
    public static func threshold(forPrecision targetPrecision: Double, scores: [Double], labels: [Bool]) throws -> Choice? {
        var best: Choice?
        // Thresholds fall along the curve, so only a strictly better pair replaces the current best.
        for point in try ClassificationMetrics.precisionRecallCurve(scores: scores, labels: labels) where point.precision >= targetPrecision {
            if let current = best, !(point.recall > current.recall || (point.recall == current.recall && point.precision > current.precision)) {
                continue
            }
            best = point
        }
        return best
    }
}
