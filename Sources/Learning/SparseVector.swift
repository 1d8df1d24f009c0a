/// A sparse vector stored as strictly increasing indices with parallel values.
///
/// Sorted parallel arrays keep dot products a linear merge and training loops free of
/// dictionary look-ups.
public struct SparseVector: Codable, Sendable, Equatable {
    /// Strictly increasing positions of the stored entries.
    public private(set) var indices: [Int]
    /// Values at ``indices``.
    public private(set) var values: [Double]
    /// The length of the vector this represents.
    public let dimension: Int

    /// Creates a vector from sorted, unique, in-range indices.
    /// - Throws: ``LearningError`` if the arrays differ in length, indices are not
    ///   strictly increasing, or an index is outside `0..<dimension`.
    public init(dimension: Int, indices: [Int], values: [Double]) throws {
        guard dimension >= 0 else { throw LearningError.invalidArgument("dimension must not be negative") }
        guard indices.count == values.count else {
            throw LearningError.lengthMismatch(expected: indices.count, actual: values.count)
        }
        var previous = -1
        for index in indices {
            guard index > previous, index < dimension else {
                throw LearningError.invalidArgument("indices must be strictly increasing and below the dimension")
            }
            previous = index
        }
        self.dimension = dimension
        self.indices = indices
        self.values = values
    }

    /// Creates a vector from unordered `(index, value)` pairs, summing duplicates and
    /// dropping entries that sum to zero.
    public init(dimension: Int, pairs: [(index: Int, value: Double)]) throws {
        guard dimension >= 0 else { throw LearningError.invalidArgument("dimension must not be negative") }
        for pair in pairs where pair.index < 0 || pair.index >= dimension {
            throw LearningError.invalidArgument("index \(pair.index) outside 0..<\(dimension)")
        }
        self.init(unchecked: dimension, pairs: pairs)
    }

    /// Creates a vector holding the nonzero entries of `dense`.
    public init(dense: [Double]) {
        var indices: [Int] = []
        var values: [Double] = []
        for (index, value) in dense.enumerated() where value != 0 {
            indices.append(index)
            values.append(value)
        }
        self.init(uncheckedDimension: dense.count, indices: indices, values: values)
    }

    /// An all-zero vector.
    public init(zeros dimension: Int) {
        self.init(uncheckedDimension: max(0, dimension), indices: [], values: [])
    }

    init(uncheckedDimension dimension: Int, indices: [Int], values: [Double]) {
        self.dimension = dimension
        self.indices = indices
        self.values = values
    }

    init(unchecked dimension: Int, pairs: [(index: Int, value: Double)]) {
        // Sorting plain integers (the index above the pair's position) is several times faster
        // than sorting the pairs with a closure, and keeps equal indices in their given order.
        let keys: [Int]
        if dimension <= 1 << 31, pairs.count <= 1 << 32 {
            var packed = [Int](repeating: 0, count: pairs.count)
            for position in pairs.indices { packed[position] = pairs[position].index << 32 | position }
            packed.sort()
            keys = packed
        } else {
            keys = pairs.indices.sorted { pairs[$0].index < pairs[$1].index }
        }
        var indices: [Int] = []
        var values: [Double] = []
        indices.reserveCapacity(keys.count)
        values.reserveCapacity(keys.count)
        for key in keys {
            let pair = pairs[dimension <= 1 << 31 ? key & 0xFFFF_FFFF : key]
            if let last = indices.last, last == pair.index {
                values[values.count - 1] += pair.value
            } else {
                indices.append(pair.index)
                values.append(pair.value)
            }
        }
        var write = 0
        for read in indices.indices where values[read] != 0 {
            indices[write] = indices[read]
            values[write] = values[read]
            write += 1
        }
        indices.removeLast(indices.count - write)
        values.removeLast(values.count - write)
        self.init(uncheckedDimension: dimension, indices: indices, values: values)
    }

    /// The number of stored entries.
    public var nonzeroCount: Int { indices.count }

    /// The value at `index`, zero when not stored or out of range.
    public subscript(index: Int) -> Double {
        var low = 0
        var high = indices.count
        while low < high {
            let mid = (low + high) / 2
            if indices[mid] < index { low = mid + 1 } else { high = mid }
        }
        return low < indices.count && indices[low] == index ? values[low] : 0
    }

    /// The dot product with another sparse vector (entries beyond either dimension count as zero).
    public func dot(_ other: SparseVector) -> Double {
        var i = 0
        var j = 0
        var sum = 0.0
        while i < indices.count, j < other.indices.count {
            let a = indices[i]
            let b = other.indices[j]
            if a == b {
                sum += values[i] * other.values[j]
                i += 1
                j += 1
            } else if a < b {
                i += 1
            } else {
                j += 1
            }
        }
        return sum
    }

    /// The dot product with a dense vector; indices beyond `dense.count` count as zero.
    public func dot(_ dense: [Double]) -> Double {
        var sum = 0.0
        dense.withUnsafeBufferPointer { buffer in
            for k in indices.indices {
                let index = indices[k]
                if index < buffer.count { sum += values[k] * buffer[index] }
            }
        }
        return sum
    }

    /// The sum of squared values.
    public var squaredNorm: Double { values.reduce(0) { $0 + $1 * $1 } }

    /// The Euclidean length.
    public var l2Norm: Double { squaredNorm.squareRoot() }

    /// This vector divided by its Euclidean length; a zero vector is returned unchanged.
    public func l2Normalized() -> SparseVector {
        let norm = l2Norm
        return norm > 0 ? scaled(by: 1 / norm) : self
    }

    /// This vector with every value multiplied by `factor`.
    public func scaled(by factor: Double) -> SparseVector {
        SparseVector(uncheckedDimension: dimension, indices: indices, values: values.map { $0 * factor })
    }

    /// This vector with `transform` applied to every stored value.
    public func mapValues(_ transform: (Double) -> Double) -> SparseVector {
        SparseVector(uncheckedDimension: dimension, indices: indices, values: values.map(transform))
    }

    /// The dense representation.
    public func toDense() -> [Double] {
        var dense = [Double](repeating: 0, count: dimension)
        for k in indices.indices { dense[indices[k]] = values[k] }
        return dense
    }

    private enum CodingKeys: String, CodingKey { case dimension, indices, values }

    /// Decodes and validates a vector.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            dimension: container.decode(Int.self, forKey: .dimension),
            indices: container.decode([Int].self, forKey: .indices),
            values: container.decode([Double].self, forKey: .values)
        )
    }
}
