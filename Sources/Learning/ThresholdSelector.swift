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
        try ClassificationMetrics.validate(scores: scores, labels: labels)
        let positives = labels.reduce(0) { $0 + ($1 ? 1 : 0) }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var best: Choice?
        var truePositives = 0
        var predicted = 0
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count, scores[order[end + 1]] == scores[order[start]] { end += 1 }
            for k in start...end {
                predicted += 1
                if labels[order[k]] { truePositives += 1 }
            }
            let precision = Double(truePositives) / Double(predicted)
            let recall = positives == 0 ? 0 : Double(truePositives) / Double(positives)
            if precision >= targetPrecision {
                let candidate = Choice(threshold: scores[order[start]], precision: precision, recall: recall)
                // Thresholds fall as we go, so only a strictly better pair replaces the current best.
                if let current = best {
                    if recall > current.recall || (recall == current.recall && precision > current.precision) { best = candidate }
                } else {
                    best = candidate
                }
            }
            start = end + 1
        }
        return best
    }
}
