import Testing
@testable import Learning

@Suite("Tokenizer and n-grams")
struct TokenizerTests {
    @Test func lowercasesAndSplitsOnNonWordCharacters() {
        #expect(Tokenizer().tokens("Hello, WORLD! don't-stop") == ["hello", "world", "don", "t", "stop"])
    }

    @Test func appliesNFKC() {
        // Full-width letters and the "fi" ligature fold to plain ASCII under NFKC.
        #expect(Tokenizer().tokens("Ｈｅｌｌｏ ﬁne") == ["hello", "fine"])
        // A decomposed é and a precomposed é become the same token.
        #expect(Tokenizer().tokens("Cafe\u{301}") == Tokenizer().tokens("Café"))
        #expect(Tokenizer().tokens("Café") == ["café"])
    }

    @Test func replacesURLsAndNumbers() {
        #expect(Tokenizer().tokens("see https://x.example/a?b=1 now 42 times, 3rd") == ["see", "<url>", "now", "<num>", "times", "3rd"])
        #expect(Tokenizer(replaceURLs: false, replaceNumbers: false).tokens("www.a.com 42") == ["www", "a", "com", "42"])
    }

    @Test func theASCIIPathGivesTheGeneralPathsTokens() {
        // Every ASCII byte in random strings of words, URLs, digits, punctuation and controls.
        var generator = SeededGenerator(seed: 7)
        let pieces = ["Hello", "WORLD", "don't", "42", "3rd", "http://X.example/a?b=1", "HTTPS://y", "www.Z.com", "wwwx",
                      "e-mail", "a_b", "\t", "\n", "\r\n", " ", "\u{0B}", "\u{0C}", "\u{1C}", "\u{7F}", "\u{00}", "!?", "ab12cd", "I"]
        let tokenizers = [Tokenizer(), Tokenizer(lowercase: false), Tokenizer(replaceURLs: false, replaceNumbers: false),
                          Tokenizer(minimumTokenLength: 2)]
        for round in 0..<400 {
            var text = ""
            for _ in 0..<Int.random(in: 1...12, using: &generator) { text += pieces.randomElement(using: &generator)! }
            if round % 4 == 0 { text += String(UnicodeScalar(UInt8.random(in: 0...127, using: &generator))) }
            for tokenizer in tokenizers {
                #expect(tokenizer.tokens(text) == tokenizer.unicodeTokens(text), "\(text.debugDescription)")
            }
        }
        #expect(Tokenizer().tokens("Café") == ["café"])  // not ASCII: the general path
    }

    @Test func keepsNonLatinScripts() {
        #expect(Tokenizer().tokens("Привет мир 你好") == ["привет", "мир", "你好"])
    }

    @Test func wordNGrams() throws {
        #expect(try NGrams.words(["a", "b", "c"], range: 1...2) == ["a", "b", "c", "a b", "b c"])
        #expect(try NGrams.words(["a"], range: 2...3) == [])
        #expect(throws: LearningError.self) { try NGrams.words(["a"], range: 0...1) }
    }

    @Test func characterNGramsWithinWordBoundaries() throws {
        // scikit-learn's char_wb pads each word with one space on each side.
        #expect(try NGrams.characters(["ab"], range: 2...3) == [" a", "ab", "b ", " ab", "ab "])
        // A word shorter than n is emitted once, padded.
        #expect(try NGrams.characters(["a"], range: 3...4) == [" a "])
        #expect(try NGrams.characters(["a", "bc"], range: 3...3) == [" a ", " bc", "bc "])
    }
}
