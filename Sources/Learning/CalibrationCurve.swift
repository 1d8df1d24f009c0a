/// A reliability diagram: predicted probabilities grouped into equal-width bins over
/// [0, 1], comparing each bin's mean prediction with its observed positive rate.
public struct CalibrationCurve: Codable, Sendable, Equatable {
    /// One non-empty bin.
    public struct Bin: Codable, Sendable, Equatable {
        /// The bin's lower edge.
        public let lowerBound: Double
        /// The bin's upper edge.
        public let upperBound: Double
        /// How many predictions fell in the bin.
        public let count: Int
        /// Their mean predicted probability.
        public let meanPredicted: Double
        /// The fraction of them that were positive.
        public let observedFrequency: Double
    }

    /// The non-empty bins, lowest first (empty bins are omitted, as in scikit-learn).
    public let bins: [Bin]
    /// The Brier score of all the predictions.
    public let brierScore: Double

    /// Expected calibration error: the count-weighted mean of |observed − predicted| over bins.
    public var expectedCalibrationError: Double {
        let total = bins.reduce(0) { $0 + $1.count }
        guard total > 0 else { return 0 }
        return bins.reduce(0.0) { $0 + Double($1.count) * abs($1.observedFrequency - $1.meanPredicted) } / Double(total)
    }

    /// Bins `probabilities` into `binCount` equal-width bins; a probability of exactly 1
    /// falls in the last bin, and each bin is `[lower, upper)`.
    /// - Throws: ``LearningError`` for empty or mismatched input, `binCount < 1`, or a
    ///   probability outside [0, 1].
    public init(probabilities: [Double], labels: [Bool], binCount: Int = 10) throws {
        guard binCount >= 1 else { throw LearningError.invalidArgument("binCount must be at least 1") }
        try ClassificationMetrics.validate(scores: probabilities, labels: labels)
        guard probabilities.allSatisfy({ (0...1).contains($0) }) else {
            throw LearningError.invalidArgument("probabilities must lie in [0, 1]")
        }
        var counts = [Int](repeating: 0, count: binCount)
        var predictedSums = [Double](repeating: 0, count: binCount)
        var positives = [Int](repeating: 0, count: binCount)
        for (p, y) in zip(probabilities, labels) {
            let bin = min(binCount - 1, Int(p * Double(binCount)))
            counts[bin] += 1
            predictedSums[bin] += p
            if y { positives[bin] += 1 }
        }
        var bins: [Bin] = []
        for b in 0..<binCount where counts[b] > 0 {
            bins.append(Bin(
                lowerBound: Double(b) / Double(binCount),
                upperBound: Double(b + 1) / Double(binCount),
                count: counts[b],
                meanPredicted: predictedSums[b] / Double(counts[b]),
                observedFrequency: Double(positives[b]) / Double(counts[b])
            ))
        }
        self.bins = bins
        self.brierScore = try ClassificationMetrics.brierScore(probabilities: probabilities, labels: labels)
    }
}
