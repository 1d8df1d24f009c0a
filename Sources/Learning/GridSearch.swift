/// Cross-validated hyperparameter search scored by mean F1.
public enum GridSearch {
    /// One candidate's cross-validated result.
    public struct CandidateScore<Parameters: Sendable>: Sendable {
        /// The candidate.
        public let parameters: Parameters
        /// F1 on each fold's validation set.
        public let foldF1: [Double]
        /// The mean of ``foldF1``.
        public var meanF1: Double { foldF1.isEmpty ? 0 : foldF1.reduce(0, +) / Double(foldF1.count) }
    }

    /// The whole search.
    public struct Result<Parameters: Sendable>: Sendable {
        /// Every candidate, in the order given.
        public let candidates: [CandidateScore<Parameters>]
        /// The candidate with the highest mean F1 (the earliest one on ties).
        public var best: CandidateScore<Parameters> {
            var best = candidates[0]
            for candidate in candidates.dropFirst() where candidate.meanF1 > best.meanF1 { best = candidate }
            return best
        }
    }

    /// Scores every candidate on every fold.
    /// - Parameters:
    ///   - candidates: the grid, e.g. from ``grid(_:)``.
    ///   - labels: the label of every example.
    ///   - folds: the splits to use.
    ///   - train: fits a model on the given training indices and returns a predictor of an
    ///     example index's label.
    /// - Throws: ``LearningError/emptyInput(_:)`` for no candidates, or whatever `train` throws.
    public static func run<Parameters: Sendable>(
        candidates: [Parameters],
        labels: [Bool],
        folds: StratifiedKFold,
        train: (Parameters, [Int]) throws -> (Int) -> Bool
    ) throws -> Result<Parameters> {
        guard !candidates.isEmpty else { throw LearningError.emptyInput("candidates") }
        var scores: [CandidateScore<Parameters>] = []
        for parameters in candidates {
            var foldF1: [Double] = []
            for fold in folds.folds {
                let predict = try train(parameters, fold.training)
                var matrix = ConfusionMatrix(truePositives: 0, falsePositives: 0, trueNegatives: 0, falseNegatives: 0)
                for index in fold.validation { matrix.record(actual: labels[index], predicted: predict(index)) }
                foldF1.append(matrix.f1)
            }
            scores.append(CandidateScore(parameters: parameters, foldF1: foldF1))
        }
        return Result(candidates: scores)
    }

    /// The Cartesian product of named value lists, with names in sorted order and the
    /// last name varying fastest, so the order is reproducible.
    public static func grid(_ axes: [String: [Double]]) -> [[String: Double]] {
        var combinations: [[String: Double]] = [[:]]
        for name in axes.keys.sorted() {
            let values = axes[name] ?? []
            combinations = combinations.flatMap { partial in values.map { value in partial.merging([name: value]) { $1 } } }
        }
        return combinations
    }
}
