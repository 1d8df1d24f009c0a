/// Which feature positions a set of documents used: a bit per position. A message whose
/// features a model never saw in training is one it knows little about, so the share of
/// such features is watched for drift.
public struct FeatureVocabulary: Sendable, Equatable {
    /// The feature dimension.
    public let dimension: Int
    private var bits: [UInt64]

    /// The positions any of `documents` uses (a nonzero count).
    /// - Throws: ``LearningError/dimensionMismatch(expected:actual:)`` for a document of
    ///   another dimension.
    public init(documents: some Sequence<SparseVector>, dimension: Int) throws {
        self.init(empty: dimension)
        for document in documents {
            guard document.dimension == dimension else {
                throw LearningError.dimensionMismatch(expected: dimension, actual: document.dimension)
            }
            insert(document)
        }
    }

    /// The positions where `frequencies` is nonzero (a transformer's document frequencies).
    public init(frequencies: SparseVector) {
        self.init(empty: frequencies.dimension)
        insert(frequencies)
    }

    private init(empty dimension: Int) {
        self.dimension = max(0, dimension)
        bits = [UInt64](repeating: 0, count: (self.dimension + 63) / 64)
    }

    private mutating func insert(_ vector: SparseVector) {
        for k in vector.indices.indices where vector.values[k] != 0 {
            let index = vector.indices[k]
            bits[index >> 6] |= 1 << UInt64(index & 63)
        }
    }

    /// Whether any document used position `index`.
    public func contains(_ index: Int) -> Bool {
        guard index >= 0, index < dimension else { return false }
        return bits[index >> 6] & (1 << UInt64(index & 63)) != 0
    }

    /// The share of `counts`' total weight (absolute counts, so alternate-sign hashing counts
    /// too) that falls on positions no document used; 0 for an empty vector, 1 for a vector
    /// of another dimension.
    public func unseenShare(_ counts: SparseVector) -> Double {
        guard counts.dimension == dimension else { return 1 }
        var total = 0.0
        var unseen = 0.0
        for k in counts.indices.indices {
            let weight = abs(counts.values[k])
            total += weight
            if !contains(counts.indices[k]) { unseen += weight }
        }
        return total > 0 ? unseen / total : 0
    }
}
