import Foundation

/// Term-frequency × inverse-document-frequency weighting, as scikit-learn's
/// `TfidfTransformer` defines it.
///
/// With smoothing, `idf = ln((1 + n) / (1 + df)) + 1`; without, `idf = ln(n / df) + 1`.
/// Rows are then L2-normalised if ``normalize`` is set.
public struct TFIDFTransformer: Codable, Sendable, Equatable {
    /// Whether idf adds one to document counts, as if one extra document held every term.
    public let smoothIDF: Bool
    /// Whether term frequency is replaced by `1 + ln(tf)`.
    public let sublinearTF: Bool
    /// Whether each transformed row is scaled to unit length.
    public let normalize: Bool
    /// The number of documents seen by ``fit(_:dimension:smoothIDF:sublinearTF:normalize:)``.
    public let documentCount: Int
    /// Document frequency per feature, stored sparsely.
    public let documentFrequencies: SparseVector
    /// The idf of every feature position.
    public private(set) var idf: [Double]
    /// The positions some fitted document used (derived, not encoded).
    public let vocabulary: FeatureVocabulary

    /// Learns document frequencies from count vectors of dimension `dimension`.
    /// - Throws: ``LearningError`` for an empty corpus or a vector of another dimension.
    public static func fit(
        _ documents: [SparseVector],
        dimension: Int,
        smoothIDF: Bool = true,
        sublinearTF: Bool = false,
        normalize: Bool = true
    ) throws -> TFIDFTransformer {
        guard !documents.isEmpty else { throw LearningError.emptyInput("documents") }
        var df = [Double](repeating: 0, count: dimension)
        for document in documents {
            guard document.dimension == dimension else {
                throw LearningError.dimensionMismatch(expected: dimension, actual: document.dimension)
            }
            for (k, index) in document.indices.enumerated() where document.values[k] != 0 { df[index] += 1 }
        }
        return TFIDFTransformer(
            smoothIDF: smoothIDF, sublinearTF: sublinearTF, normalize: normalize,
            documentCount: documents.count, documentFrequencies: SparseVector(dense: df)
        )
    }

    private init(smoothIDF: Bool, sublinearTF: Bool, normalize: Bool, documentCount: Int, documentFrequencies: SparseVector) {
        self.smoothIDF = smoothIDF
        self.sublinearTF = sublinearTF
        self.normalize = normalize
        self.documentCount = documentCount
        self.documentFrequencies = documentFrequencies
        let n = Double(documentCount)
        let smoothing = smoothIDF ? 1.0 : 0.0
        // Unseen features get the idf of df = 0; without smoothing that would be infinite,
        // so they are given the largest finite idf instead (they are zero in training data anyway).
        let unseen = smoothIDF ? log((n + 1) / 1) + 1 : log(n) + 1
        var idf = [Double](repeating: unseen, count: documentFrequencies.dimension)
        for (k, index) in documentFrequencies.indices.enumerated() {
            idf[index] = log((n + smoothing) / (documentFrequencies.values[k] + smoothing)) + 1
        }
        self.idf = idf
        vocabulary = FeatureVocabulary(frequencies: documentFrequencies)
    }

    private enum CodingKeys: String, CodingKey {
        case smoothIDF, sublinearTF, normalize, documentCount, documentFrequencies
    }

    /// Decodes a transformer and rebuilds its idf table.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let count = try c.decode(Int.self, forKey: .documentCount)
        guard count > 0 else { throw LearningError.invalidArgument("documentCount must be positive") }
        try self.init(
            smoothIDF: c.decode(Bool.self, forKey: .smoothIDF),
            sublinearTF: c.decode(Bool.self, forKey: .sublinearTF),
            normalize: c.decode(Bool.self, forKey: .normalize),
            documentCount: count,
            documentFrequencies: c.decode(SparseVector.self, forKey: .documentFrequencies)
        )
    }

    /// Encodes everything except the idf table, which is derived.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(smoothIDF, forKey: .smoothIDF)
        try c.encode(sublinearTF, forKey: .sublinearTF)
        try c.encode(normalize, forKey: .normalize)
        try c.encode(documentCount, forKey: .documentCount)
        try c.encode(documentFrequencies, forKey: .documentFrequencies)
    }

    /// The feature dimension this transformer was fitted on.
    public var dimension: Int { idf.count }

    /// `transform(counts).dot(dense)` without building the transformed vector (counts of
    /// another dimension give 0).
    func weightedDot(_ counts: SparseVector, _ dense: [Double]) -> Double {
        guard counts.dimension == dimension, dense.count == dimension else { return 0 }
        var dot = 0.0
        var squares = 0.0
        idf.withUnsafeBufferPointer { idf in
            dense.withUnsafeBufferPointer { dense in
                for k in counts.indices.indices {
                    let index = counts.indices[k]
                    let weighted = termFrequency(counts.values[k]) * idf[index]
                    dot += weighted * dense[index]
                    squares += weighted * weighted
                }
            }
        }
        return normalize && squares > 0 ? dot / squares.squareRoot() : dot
    }

    @inline(__always)
    private func termFrequency(_ count: Double) -> Double {
        // Sign-preserving so alternate-sign hashing still works.
        guard sublinearTF, count != 0 else { return count }
        return count > 0 ? 1 + log(count) : -(1 + log(-count))
    }

    /// Weights a count vector.
    /// - Throws: ``LearningError/dimensionMismatch(expected:actual:)``.
    public func transform(_ counts: SparseVector) throws -> SparseVector {
        guard counts.dimension == dimension else {
            throw LearningError.dimensionMismatch(expected: dimension, actual: counts.dimension)
        }
        var values = counts.values
        for k in values.indices { values[k] = termFrequency(values[k]) * idf[counts.indices[k]] }
        let weighted = SparseVector(uncheckedDimension: dimension, indices: counts.indices, values: values)
        return normalize ? weighted.l2Normalized() : weighted
    }
}
