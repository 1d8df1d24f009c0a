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
        var pairs: [(index: Int, value: Double)] = []
        if let range = wordNGrams {
            // Word n-grams are hashed by streaming the tokens, avoiding a joined string per gram.
            let tokenBytes: [[UInt8]] = tokens.map { Array($0.utf8) }
            for n in range where n <= tokenBytes.count {
                for start in 0...(tokenBytes.count - n) {
                    var hasher = StableHash()
                    hasher.combine(0x77)
                    hasher.combine(0x3A)
                    for offset in 0..<n {
                        if offset > 0 { hasher.combine(0x20) }
                        for byte in tokenBytes[start + offset] { hasher.combine(byte) }
                    }
                    let placed = place(hasher.value)
                    pairs.append((placed.index, placed.sign))
                }
            }
        }
        if let range = characterNGrams, let grams = try? NGrams.characters(tokens, range: range) {
            for gram in grams {
                let placed = bucket(for: gram, kind: .character)
                pairs.append((placed.index, placed.sign))
            }
        }
        let counts = SparseVector(unchecked: dimension, pairs: pairs)
        return binary ? counts.mapValues { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) } : counts
    }
}
