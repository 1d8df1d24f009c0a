/// Turns text into a sparse count vector by hashing n-grams into `2^bucketBits` buckets.
///
/// Hashing needs no vocabulary, so training and serving agree on feature positions
/// without shipping one; FNV-1a keeps positions identical across processes.
public struct HashingVectorizer: Codable, Sendable, Equatable {
    /// The tokenizer applied before n-gram extraction.
    public let tokenizer: Tokenizer
    /// Word n-gram lengths, or `nil` for no word features.
    public let wordNGrams: ClosedRange<Int>?
    /// Character (`char_wb`) n-gram lengths, or `nil` for no character features.
    public let characterNGrams: ClosedRange<Int>?
    /// The number of buckets is `2^bucketBits`.
    public let bucketBits: Int
    /// Whether a second hash bit gives each feature a sign, so collisions tend to cancel.
    public let alternateSign: Bool
    /// Whether counts are clipped to 1 (presence instead of frequency).
    public let binary: Bool

    /// Creates a vectoriser.
    /// - Throws: ``LearningError/invalidArgument(_:)`` when `bucketBits` is outside
    ///   1...30, an n-gram range starts below 1, or no feature kind is selected.
    public init(
        tokenizer: Tokenizer = Tokenizer(),
        wordNGrams: ClosedRange<Int>? = 1...2,
        characterNGrams: ClosedRange<Int>? = nil,
        bucketBits: Int = 18,
        alternateSign: Bool = false,
        binary: Bool = false
    ) throws {
        guard (1...30).contains(bucketBits) else { throw LearningError.invalidArgument("bucketBits must be in 1...30") }
        guard wordNGrams != nil || characterNGrams != nil else {
            throw LearningError.invalidArgument("select word or character n-grams")
        }
        if let range = wordNGrams, range.lowerBound < 1 { throw LearningError.invalidArgument("word n-grams start at 1") }
        if let range = characterNGrams, range.lowerBound < 1 {
            throw LearningError.invalidArgument("character n-grams start at 1")
        }
        self.tokenizer = tokenizer
        self.wordNGrams = wordNGrams
        self.characterNGrams = characterNGrams
        self.bucketBits = bucketBits
        self.alternateSign = alternateSign
        self.binary = binary
    }

    private enum CodingKeys: String, CodingKey {
        case tokenizer, wordNGrams, characterNGrams, bucketBits, alternateSign, binary
    }

    /// Decodes and validates a vectoriser.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            tokenizer: c.decode(Tokenizer.self, forKey: .tokenizer),
            wordNGrams: c.decodeIfPresent(ClosedRange<Int>.self, forKey: .wordNGrams),
            characterNGrams: c.decodeIfPresent(ClosedRange<Int>.self, forKey: .characterNGrams),
            bucketBits: c.decode(Int.self, forKey: .bucketBits),
            alternateSign: c.decode(Bool.self, forKey: .alternateSign),
            binary: c.decode(Bool.self, forKey: .binary)
        )
    }

    /// The number of buckets, `2^bucketBits`.
    public var dimension: Int { 1 << bucketBits }

    /// Which kind of n-gram a feature string is; the kind is mixed into the hash so a
    /// one-word token and a character gram with the same spelling do not share a bucket.
    public enum FeatureKind: Sendable {
        /// A word n-gram (tokens joined by one space).
        case word
        /// A `char_wb` character n-gram.
        case character
    }

    /// The bucket and sign a feature hashes to.
    public func bucket(for feature: String, kind: FeatureKind) -> (index: Int, sign: Double) {
        var hasher = StableHash()
        hasher.combine(kind == .word ? 0x77 : 0x63)  // "w" / "c"
        hasher.combine(0x3A)  // ":"
        hasher.combine(feature)
        return place(hasher.value)
    }

    @inline(__always)
    private func place(_ hash: UInt64) -> (index: Int, sign: Double) {
        let index = Int(hash & UInt64(dimension - 1))
        // The top bit is independent of the low bits used for the index.
        let sign: Double = alternateSign && (hash >> 63) == 1 ? -1 : 1
        return (index, sign)
    }

    @inline(__always)
    private func characterGram(_ bytes: [UInt8], from start: Int, to end: Int) -> Int {
        var hasher = StableHash()
        hasher.combine(0x63)  // "c"
        hasher.combine(0x3A)  // ":"
        for k in start..<end { hasher.combine(bytes[k]) }
        let placed = place(hasher.value)
        return placed.index << 1 | (placed.sign < 0 ? 1 : 0)
    }

    /// The raw feature strings `text` produces (word n-grams, then character n-grams).
    public func features(_ text: String) -> (words: [String], characters: [String]) {
        let tokens = tokenizer.tokens(text)
        // The ranges were validated at construction, so extraction cannot fail here.
        let words = wordNGrams.flatMap { try? NGrams.words(tokens, range: $0) } ?? []
        let characters = characterNGrams.flatMap { try? NGrams.characters(tokens, range: $0) } ?? []
        return (words, characters)
    }

    /// The hashed count vector of `text`.
    public func transform(_ text: String) -> SparseVector {
        let tokens = tokenizer.tokens(text)
        // Each occurrence as its bucket times two, plus one when its sign is negative: sorting
        // these integers groups the counts with no pair array and no comparison closure.
        var keys: [Int] = []
        keys.reserveCapacity(text.utf8.count * 4)
        if let range = wordNGrams {
            // Word n-grams are hashed by streaming the tokens, avoiding a joined string per gram.
            // All tokens' bytes in one array, token k at starts[k]..<starts[k + 1].
            var bytes: [UInt8] = []
            bytes.reserveCapacity(text.utf8.count + 8)
            var starts = [0]
            for token in tokens {
                bytes.append(contentsOf: token.utf8)
                starts.append(bytes.count)
            }
            for n in range where n <= tokens.count {
                for start in 0...(tokens.count - n) {
                    var hasher = StableHash()
                    hasher.combine(0x77)
                    hasher.combine(0x3A)
                    for offset in 0..<n {
                        if offset > 0 { hasher.combine(0x20) }
                        for k in starts[start + offset]..<starts[start + offset + 1] { hasher.combine(bytes[k]) }
                    }
                    let placed = place(hasher.value)
                    keys.append(placed.index << 1 | (placed.sign < 0 ? 1 : 0))
                }
            }
        }
        if let range = characterNGrams {
            // The grams `NGrams.characters` spells out, hashed straight from the padded token's
            // UTF-8 bytes between character boundaries, with no string per gram.
            var bytes: [UInt8] = []
            var boundaries: [Int] = []
            for token in tokens {
                bytes.removeAll(keepingCapacity: true)
                boundaries.removeAll(keepingCapacity: true)
                boundaries.append(0)
                bytes.append(0x20)
                boundaries.append(1)
                if token.utf8.allSatisfy({ $0 < 0x80 }) {
                    // ASCII: every byte is a character (a token holds no "\r\n"), so no grapheme breaking.
                    for byte in token.utf8 {
                        bytes.append(byte)
                        boundaries.append(bytes.count)
                    }
                } else {
                    for character in token {
                        bytes.append(contentsOf: character.utf8)
                        boundaries.append(bytes.count)
                    }
                }
                bytes.append(0x20)
                boundaries.append(bytes.count)
                let length = boundaries.count - 1  // characters in the padded token
                for n in range {
                    if length <= n {
                        keys.append(characterGram(bytes, from: 0, to: bytes.count))
                        break
                    }
                    for start in 0...(length - n) {
                        keys.append(characterGram(bytes, from: boundaries[start], to: boundaries[start + n]))
                    }
                }
            }
        }
        keys.sort()
        var indices: [Int] = []
        var values: [Double] = []
        indices.reserveCapacity(keys.count)
        values.reserveCapacity(keys.count)
        for key in keys {
            let index = key >> 1
            let value: Double = key & 1 == 1 ? -1 : 1
            if let last = indices.last, last == index {
                values[values.count - 1] += value
            } else {
                indices.append(index)
                values.append(value)
            }
        }
        // A bucket whose signed occurrences cancel holds no entry.
        var kept = 0
        for k in indices.indices where values[k] != 0 {
            indices[kept] = indices[k]
            values[kept] = values[k]
            kept += 1
        }
        indices.removeLast(indices.count - kept)
        values.removeLast(values.count - kept)
        let counts = SparseVector(uncheckedDimension: dimension, indices: indices, values: values)
        return binary ? counts.mapValues { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) } : counts
    }
}
