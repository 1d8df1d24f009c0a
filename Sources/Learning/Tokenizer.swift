import Foundation

/// Unicode-aware text normalisation and tokenisation.
///
/// Text is NFKC-normalised (so full-width letters, ligatures and compatibility digits
/// match their plain forms), lower-cased, and split into runs of letters, marks and
/// digits. URLs and pure digit runs can be folded into the class tokens ``urlToken``
/// and ``numberToken``, because their exact spelling rarely carries signal but their
/// presence does.
public struct Tokenizer: Codable, Sendable, Equatable {
    /// The token that replaces a URL.
    public static let urlToken = "<url>"
    /// The token that replaces a run of decimal digits.
    public static let numberToken = "<num>"

    /// Whether to lower-case text.
    public var lowercase: Bool
    /// Whether to apply NFKC normalisation.
    public var unicodeNormalization: Bool
    /// Whether whitespace-delimited chunks that look like URLs become ``urlToken``.
    public var replaceURLs: Bool
    /// Whether runs made only of decimal digits become ``numberToken``.
    public var replaceNumbers: Bool
    /// Tokens shorter than this many characters are dropped (class tokens are always kept).
    public var minimumTokenLength: Int

    /// Creates a tokenizer; the defaults suit chat messages.
    public init(
        lowercase: Bool = true,
        unicodeNormalization: Bool = true,
        replaceURLs: Bool = true,
        replaceNumbers: Bool = true,
        minimumTokenLength: Int = 1
    ) {
        self.lowercase = lowercase
        self.unicodeNormalization = unicodeNormalization
        self.replaceURLs = replaceURLs
        self.replaceNumbers = replaceNumbers
        self.minimumTokenLength = minimumTokenLength
    }

    /// Applies NFKC and lower-casing as configured.
    public func normalize(_ text: String) -> String {
        var result = text
        if unicodeNormalization { result = result.precomposedStringWithCompatibilityMapping }
        // Lower-casing after NFKC because compatibility mapping can produce upper-case letters.
        if lowercase { result = result.lowercased() }
        return result
    }

    /// Splits normalised `text` into tokens.
    public func tokens(_ text: String) -> [String] {
        var text = text
        if let tokens = text.withUTF8(asciiTokens) { return tokens }
        return unicodeTokens(text)
    }

    /// ``tokens(_:)`` for text that is all ASCII (most chat), or nil for any other text. NFKC
    /// leaves ASCII as it is and every class test is one byte, so this gives the very tokens
    /// the general path does (a test compares them) without its normalisation and scalar
    /// property look-ups, which were most of the time it took to score a message.
    func asciiTokens(_ bytes: UnsafeBufferPointer<UInt8>) -> [String]? {
        for byte in bytes where byte >= 0x80 { return nil }
        var tokens: [String] = []
        var chunkStart = -1
        for index in 0...bytes.count {
            // Unicode's White_Space within ASCII: tab, line feed, vertical tab, form feed, return, space.
            let space = index == bytes.count || bytes[index] == 0x20 || (0x09...0x0D).contains(bytes[index])
            if space {
                if chunkStart >= 0 { asciiChunk(UnsafeBufferPointer(rebasing: bytes[chunkStart..<index]), into: &tokens) }
                chunkStart = -1
            } else if chunkStart < 0 {
                chunkStart = index
            }
        }
        return tokens
    }

    private func asciiChunk(_ chunk: UnsafeBufferPointer<UInt8>, into tokens: inout [String]) {
        @inline(__always) func lower(_ byte: UInt8) -> UInt8 { (0x41...0x5A).contains(byte) ? byte | 0x20 : byte }
        if replaceURLs {
            for prefix in ["http://", "https://", "www."] where chunk.count >= prefix.utf8.count
                && zip(chunk, prefix.utf8).allSatisfy({ lower($0) == $1 }) {
                tokens.append(Self.urlToken)
                return
            }
        }
        var start = -1
        var allDigits = true
        for index in 0...chunk.count {
            let byte = index < chunk.count ? chunk[index] : 0
            let digit = (0x30...0x39).contains(byte)
            let letter = (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            if index < chunk.count, digit || letter {
                if start < 0 { start = index }
                if letter { allDigits = false }
                continue
            }
            if start >= 0 {
                if replaceNumbers, allDigits {
                    tokens.append(Self.numberToken)
                } else if index - start >= minimumTokenLength {
                    let word = UnsafeBufferPointer(rebasing: chunk[start..<index])
                    tokens.append(lowercase ? String(decoding: word.lazy.map(lower), as: UTF8.self) : String(decoding: word, as: UTF8.self))
                }
            }
            start = -1
            allDigits = true
        }
    }

    /// ``tokens(_:)`` for any text.
    func unicodeTokens(_ text: String) -> [String] {
        let normalized = normalize(text)
        var tokens: [String] = []
        var chunk = String.UnicodeScalarView()
        for scalar in normalized.unicodeScalars {
            if scalar.properties.isWhitespace {
                flush(&chunk, into: &tokens)
            } else {
                chunk.append(scalar)
            }
        }
        flush(&chunk, into: &tokens)
        return tokens
    }

    private func flush(_ chunk: inout String.UnicodeScalarView, into tokens: inout [String]) {
        guard !chunk.isEmpty else { return }
        defer { chunk = String.UnicodeScalarView() }
        if replaceURLs, Self.looksLikeURL(chunk) {
            tokens.append(Self.urlToken)
            return
        }
        var word = String.UnicodeScalarView()
        var allDigits = true
        func emit() {
            guard !word.isEmpty else { return }
            if replaceNumbers, allDigits {
                tokens.append(Self.numberToken)
            } else {
                let token = String(word)
                if token.count >= minimumTokenLength { tokens.append(token) }
            }
            word = String.UnicodeScalarView()
            allDigits = true
        }
        for scalar in chunk {
            let category = scalar.properties.generalCategory
            switch category {
            case .decimalNumber:
                word.append(scalar)
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
                 .letterNumber, .otherNumber, .nonspacingMark, .spacingMark, .enclosingMark:
                word.append(scalar)
                allDigits = false
            default:
                emit()
            }
        }
        emit()
    }

    private static func looksLikeURL(_ chunk: String.UnicodeScalarView) -> Bool {
        let text = String(chunk).lowercased()
        return text.hasPrefix("http://") || text.hasPrefix("https://") || text.hasPrefix("www.")
    }
}
