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
