import Testing
import Learning

@Suite("Stable hashing and the hashing vectoriser")
struct HashingTests {
    @Test func fnv1aMatchesPublishedValues() {
        #expect(StableHash.fnv1a64("") == 0xCBF2_9CE4_8422_2325)
        #expect(StableHash.fnv1a64("a") == 0xAF63_DC4C_8601_EC8C)
        #expect(StableHash.fnv1a64("foobar") == 0x8594_4171_F739_67E8)
    }

    @Test func countsLandInFixedBuckets() throws {
        let vectorizer = try HashingVectorizer(wordNGrams: 1...2, bucketBits: 18)
        let vector = vectorizer.transform("spam SPAM eggs")
        // Bucket numbers worked out independently as FNV-1a64("w:" + gram) mod 2^18.
        #expect(vector[114_901] == 2)
        #expect(vector[177_654] == 1)
        #expect(vector[247_269] == 1)  // "spam eggs"
        #expect(vector.nonzeroCount == 4)  // spam, eggs, "spam spam", "spam eggs"
        #expect(vector.indices == vector.indices.sorted())
        #expect(vectorizer.bucket(for: "spam", kind: .word).index == 114_901)
        #expect(vector.dimension == 1 << 18)
    }

    @Test func alternateSignGivesUnitMagnitudes() throws {
        let vectorizer = try HashingVectorizer(wordNGrams: 1...1, bucketBits: 20, alternateSign: true)
        let vector = vectorizer.transform("one two three four five six seven eight nine ten")
        #expect(vector.values.allSatisfy { abs($0) == 1 })
        #expect(vector.values.contains(-1))
    }

    @Test func characterFeaturesAndBinary() throws {
        let vectorizer = try HashingVectorizer(wordNGrams: nil, characterNGrams: 3...3, bucketBits: 20, binary: true)
        let vector = vectorizer.transform("aaaa")
        // " aa", "aaa" (twice, clipped to 1), "aa "
        #expect(vector.nonzeroCount == 3)
        #expect(vector.values.allSatisfy { $0 == 1 })
    }

    @Test func hashedCharacterGramsAreTheSpelledOutOnes() throws {
        // Accents, a combining mark, an emoji with a modifier, CJK and a one-letter word: the
        // vector hashes exactly the grams `NGrams.characters` spells out.
        let text = "Café nai\u{0308}ve 👍🏽 東京 a ok"
        let vectorizer = try HashingVectorizer(wordNGrams: nil, characterNGrams: 2...4, bucketBits: 20)
        let grams = try NGrams.characters(vectorizer.tokenizer.tokens(text), range: 2...4)
        let expected = try SparseVector(dimension: 1 << 20, pairs: grams.map { (vectorizer.bucket(for: $0, kind: .character).index, 1.0) })
        #expect(vectorizer.transform(text) == expected)
        #expect(vectorizer.transform(text).values.reduce(0, +) == Double(grams.count))
    }

    @Test func rejectsInvalidSettings() {
        #expect(throws: LearningError.self) { try HashingVectorizer(bucketBits: 0) }
        #expect(throws: LearningError.self) { try HashingVectorizer(bucketBits: 31) }
        #expect(throws: LearningError.self) { try HashingVectorizer(wordNGrams: nil, characterNGrams: nil) }
    }
}
