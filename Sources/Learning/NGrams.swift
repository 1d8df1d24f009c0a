/// Word and character n-gram extraction.
public enum NGrams {
    /// Word n-grams of every length in `range`, joined by single spaces, shortest first
    /// within each starting position's length pass (scikit-learn's order).
    /// - Throws: ``LearningError/invalidArgument(_:)`` if the range starts below 1.
    public static func words(_ tokens: [String], range: ClosedRange<Int>) throws -> [String] {
        guard range.lowerBound >= 1 else { throw LearningError.invalidArgument("n-gram lengths start at 1") }
        var grams: [String] = []
        for n in range where n <= tokens.count {
            for start in 0...(tokens.count - n) {
                grams.append(tokens[start..<(start + n)].joined(separator: " "))
            }
        }
        return grams
    }

    /// Character n-grams inside word boundaries, as scikit-learn's `char_wb` analyser:
    /// each token is padded with one space on each side, and a token shorter than `n`
    /// yields its padded self once.
    /// - Throws: ``LearningError/invalidArgument(_:)`` if the range starts below 1.
    public static func characters(_ tokens: [String], range: ClosedRange<Int>) throws -> [String] {
        guard range.lowerBound >= 1 else { throw LearningError.invalidArgument("n-gram lengths start at 1") }
        var grams: [String] = []
        for token in tokens {
            let padded = Array(" " + token + " ")
            for n in range {
                if padded.count <= n {
                    grams.append(String(padded))
                    break
                }
                for start in 0...(padded.count - n) {
                    grams.append(String(padded[start..<(start + n)]))
                }
            }
        }
        return grams
    }
}
