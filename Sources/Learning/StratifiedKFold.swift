/// Stratified k-fold cross-validation splits, deterministic for a seed.
///
/// Each class's examples are shuffled with the seed and dealt round-robin into the
/// folds, continuing where the previous class stopped, so every fold's count of each
/// class is within one of every other fold's and fold sizes differ by at most one.
public struct StratifiedKFold: Sendable, Equatable {
    /// One split.
    public struct Fold: Sendable, Equatable {
        /// Indices to train on, ascending.
        public let training: [Int]
        /// Indices to validate on, ascending.
        public let validation: [Int]
    }

    /// The folds, in order.
    public let folds: [Fold]

    /// Splits examples with binary labels.
    /// - Throws: ``LearningError/invalidArgument(_:)`` if `k < 2` or `k` exceeds the
    ///   number of examples.
    public init(labels: [Bool], k: Int, seed: UInt64) throws {
        try self.init(labels: labels.map { $0 ? 1 : 0 }, k: k, seed: seed)
    }

    /// Splits examples with the given class labels.
    /// - Throws: ``LearningError/invalidArgument(_:)`` if `k < 2` or `k` exceeds the
    ///   number of examples.
    public init<Label: Hashable & Comparable>(labels: [Label], k: Int, seed: UInt64) throws {
        guard k >= 2 else { throw LearningError.invalidArgument("k must be at least 2") }
        guard k <= labels.count else { throw LearningError.invalidArgument("k must not exceed the number of examples") }
        var byClass: [Label: [Int]] = [:]
        for (index, label) in labels.enumerated() { byClass[label, default: []].append(index) }
        var generator = SeededGenerator(seed: seed)
        var assignment = [Int](repeating: 0, count: labels.count)
        var next = 0
        // Classes are visited in sorted order so the result does not depend on dictionary order.
        for label in byClass.keys.sorted() {
            var members = byClass[label] ?? []
            generator.shuffle(&members)
            for index in members {
                assignment[index] = next
                next = (next + 1) % k
            }
        }
        folds = Self.folds(assignment, k: k)
    }

    /// Uses a split made elsewhere (another library's, so both score the same folds): the
    /// fold number of each example, 0-based.
    /// - Throws: ``LearningError/invalidArgument(_:)`` for fewer than two folds, a negative
    ///   fold number, or a fold number with no example.
    public init(assignments: [Int]) throws {
        guard let largest = assignments.max(), largest >= 1 else { throw LearningError.invalidArgument("at least two folds are needed") }
        guard assignments.allSatisfy({ $0 >= 0 }) else { throw LearningError.invalidArgument("fold numbers start at 0") }
        guard Set(assignments).count == largest + 1 else { throw LearningError.invalidArgument("every fold needs an example") }
        folds = Self.folds(assignments, k: largest + 1)
    }

    private static func folds(_ assignment: [Int], k: Int) -> [Fold] {
        var validation = [[Int]](repeating: [], count: k)
        for (index, fold) in assignment.enumerated() { validation[fold].append(index) }
        return (0..<k).map { f in
            Fold(training: assignment.indices.filter { assignment[$0] != f }, validation: validation[f])
        }
    }
}
