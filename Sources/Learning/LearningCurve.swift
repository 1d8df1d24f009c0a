/// Training and validation F1 as the training set grows.
public enum LearningCurve {
    /// The mean scores at one training-set size.
    public struct Point: Sendable, Equatable {
        /// The fraction of each fold's training set used.
        public let fraction: Double
        /// The mean number of training examples used.
        public let trainingSize: Double
        /// Mean F1 on the examples trained on.
        public let trainingF1: Double
        /// Mean F1 on the validation folds.
        public let validationF1: Double
    }

    /// Computes the curve. For each fraction and fold, the training subset takes that
    /// fraction of each class (at least one example of each class present), in the fold's
    /// seeded order, so smaller subsets are prefixes of larger ones.
    /// - Parameters:
    ///   - fractions: sizes in (0, 1], as fractions of each fold's training set.
    ///   - train: fits on the given indices and returns a predictor of an example index's label.
    /// - Throws: ``LearningError/invalidArgument(_:)`` for a fraction outside (0, 1], or
    ///   whatever `train` throws.
    public static func compute(
        fractions: [Double],
        labels: [Bool],
        folds: StratifiedKFold,
        seed: UInt64,
        train: ([Int]) throws -> (Int) -> Bool
    ) throws -> [Point] {
        guard fractions.allSatisfy({ $0 > 0 && $0 <= 1 }) else {
            throw LearningError.invalidArgument("fractions must lie in (0, 1]")
        }
        var points: [Point] = []
        for fraction in fractions {
            var sizes = 0.0
            var trainF1 = 0.0
            var validationF1 = 0.0
            for (foldNumber, fold) in folds.folds.enumerated() {
                var generator = SeededGenerator(seed: seed &+ UInt64(foldNumber))
                var positives = fold.training.filter { labels[$0] }
                var negatives = fold.training.filter { !labels[$0] }
                generator.shuffle(&positives)
                generator.shuffle(&negatives)
                func take(_ members: [Int]) -> ArraySlice<Int> {
                    guard !members.isEmpty else { return [] }
                    let count = max(1, Int((fraction * Double(members.count)).rounded()))
                    return members.prefix(count)
                }
                let subset = (take(positives) + take(negatives)).sorted()
                let predict = try train(subset)
                var trainMatrix = ConfusionMatrix(truePositives: 0, falsePositives: 0, trueNegatives: 0, falseNegatives: 0)
                for index in subset { trainMatrix.record(actual: labels[index], predicted: predict(index)) }
                var validationMatrix = ConfusionMatrix(truePositives: 0, falsePositives: 0, trueNegatives: 0, falseNegatives: 0)
                for index in fold.validation { validationMatrix.record(actual: labels[index], predicted: predict(index)) }
                sizes += Double(subset.count)
                trainF1 += trainMatrix.f1
                validationF1 += validationMatrix.f1
            }
            let k = Double(max(1, folds.folds.count))
            points.append(Point(fraction: fraction, trainingSize: sizes / k, trainingF1: trainF1 / k, validationF1: validationF1 / k))
        }
        return points
    }
}
