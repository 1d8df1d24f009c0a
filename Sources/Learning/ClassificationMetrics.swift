/// Threshold-free metrics of scored binary predictions.
public enum ClassificationMetrics {
    /// Area under the ROC curve, computed from ranks (the Mann–Whitney U statistic):
    /// the probability that a random positive scores above a random negative, counting
    /// ties as one half.
    /// - Throws: ``LearningError`` for mismatched lengths or when either class is absent.
    public static func rocAUC(scores: [Double], labels: [Bool]) throws -> Double {
        try validate(scores: scores, labels: labels)
        let positives = labels.reduce(0) { $0 + ($1 ? 1 : 0) }
        let negatives = labels.count - positives
        guard positives > 0, negatives > 0 else { throw LearningError.singleClass }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var positiveRankSum = 0.0
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count, scores[order[end + 1]] == scores[order[start]] { end += 1 }
            // Tied scores share the mean of the 1-based ranks they span.
            let averageRank = Double(start + end) / 2 + 1
            for k in start...end where labels[order[k]] { positiveRankSum += averageRank }
            start = end + 1
        }
        let p = Double(positives)
        return (positiveRankSum - p * (p + 1) / 2) / (p * Double(negatives))
    }

    /// Average precision as scikit-learn defines it: `Σ (Rₙ − Rₙ₋₁) · Pₙ` over the
    /// distinct score thresholds taken from highest to lowest (no interpolation).
    /// - Throws: ``LearningError`` for mismatched lengths or when there are no positives.
    public static func averagePrecision(scores: [Double], labels: [Bool]) throws -> Double {
        let curve = try precisionRecallCurve(scores: scores, labels: labels)
        guard labels.contains(true) else { throw LearningError.singleClass }
        var previousRecall = 0.0
        var sum = 0.0
        for point in curve {
            sum += (point.recall - previousRecall) * point.precision
            previousRecall = point.recall
        }
        return sum
    }

    /// Precision and recall at each distinct score, from the highest to the lowest, predicting
    /// positive when `score >= threshold` (scikit-learn's `precision_recall_curve`, in the
    /// other order). Recall is 0 when there are no positives.
    /// - Throws: ``LearningError`` for empty or mismatched input.
    public static func precisionRecallCurve(scores: [Double], labels: [Bool]) throws -> [ThresholdSelector.Choice] {
        try validate(scores: scores, labels: labels)
        let positives = labels.reduce(0) { $0 + ($1 ? 1 : 0) }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var curve: [ThresholdSelector.Choice] = []
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
            curve.append(ThresholdSelector.Choice(
                threshold: scores[order[start]], precision: Double(truePositives) / Double(predicted),
                recall: positives == 0 ? 0 : Double(truePositives) / Double(positives)))
            start = end + 1
        }
        return curve
    }

    /// The mean squared difference between predicted probability and outcome (0 or 1).
    /// - Throws: ``LearningError`` for empty or mismatched input.
    public static func brierScore(probabilities: [Double], labels: [Bool]) throws -> Double {
        try validate(scores: probabilities, labels: labels)
        var sum = 0.0
        for (p, y) in zip(probabilities, labels) {
            let d = p - (y ? 1 : 0)
            sum += d * d
        }
        return sum / Double(labels.count)
    }

    /// The confusion matrix of predicting positive when `score >= threshold`.
    /// - Throws: ``LearningError/lengthMismatch(expected:actual:)``.
    public static func confusionMatrix(scores: [Double], labels: [Bool], threshold: Double) throws -> ConfusionMatrix {
        try ConfusionMatrix(truth: labels, predicted: scores.map { $0 >= threshold })
    }

    static func validate(scores: [Double], labels: [Bool]) throws {
        guard scores.count == labels.count else {
            throw LearningError.lengthMismatch(expected: labels.count, actual: scores.count)
        }
        guard !scores.isEmpty else { throw LearningError.emptyInput("scores") }
        guard scores.allSatisfy({ !$0.isNaN }) else { throw LearningError.invalidArgument("scores contain NaN") }
    }
}
