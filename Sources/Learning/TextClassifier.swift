/// A complete text model: hashing vectoriser, TF-IDF weighting and logistic regression,
/// plus the decision threshold chosen for it. This is what a model file stores.
public struct TextClassifier: Codable, Sendable, Equatable {
    /// Turns text into hashed counts.
    public let vectorizer: HashingVectorizer
    /// Weights the counts.
    public let tfidf: TFIDFTransformer
    /// Scores the weighted vector.
    public let model: LogisticRegression
    /// Messages scoring at or above this probability are flagged.
    public var threshold: Double

    /// Assembles a classifier from fitted parts.
    /// - Throws: ``LearningError/dimensionMismatch(expected:actual:)`` if the parts disagree
    ///   on dimension, or ``LearningError/invalidArgument(_:)`` for a threshold outside [0, 1].
    public init(vectorizer: HashingVectorizer, tfidf: TFIDFTransformer, model: LogisticRegression, threshold: Double = 0.5) throws {
        guard tfidf.dimension == vectorizer.dimension else {
            throw LearningError.dimensionMismatch(expected: vectorizer.dimension, actual: tfidf.dimension)
        }
        guard model.dimension == vectorizer.dimension else {
            throw LearningError.dimensionMismatch(expected: vectorizer.dimension, actual: model.dimension)
        }
        guard (0...1).contains(threshold) else { throw LearningError.invalidArgument("threshold must lie in [0, 1]") }
        self.vectorizer = vectorizer
        self.tfidf = tfidf
        self.model = model
        self.threshold = threshold
    }

    private enum CodingKeys: String, CodingKey { case vectorizer, tfidf, model, threshold }

    /// Decodes and validates a classifier.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            vectorizer: c.decode(HashingVectorizer.self, forKey: .vectorizer),
            tfidf: c.decode(TFIDFTransformer.self, forKey: .tfidf),
            model: c.decode(LogisticRegression.self, forKey: .model),
            threshold: c.decode(Double.self, forKey: .threshold)
        )
    }

    /// Fits TF-IDF and logistic regression on labelled texts.
    /// - Throws: ``LearningError`` for empty or mismatched input or a single class.
    public static func train(
        texts: [String],
        labels: [Bool],
        vectorizer: HashingVectorizer,
        sublinearTF: Bool = false,
        configuration: LogisticRegression.Configuration = .init(),
        threshold: Double = 0.5
    ) throws -> TextClassifier {
        guard texts.count == labels.count else { throw LearningError.lengthMismatch(expected: texts.count, actual: labels.count) }
        let counts = texts.map(vectorizer.transform)
        let tfidf = try TFIDFTransformer.fit(counts, dimension: vectorizer.dimension, sublinearTF: sublinearTF)
        let features = try counts.map(tfidf.transform)
        let model = try LogisticRegression.fit(features, labels: labels, configuration: configuration)
        return try TextClassifier(vectorizer: vectorizer, tfidf: tfidf, model: model, threshold: threshold)
    }

    /// The TF-IDF vector the model sees for `text`.
    public func features(_ text: String) -> SparseVector {
        // The vectoriser and transformer were checked to share a dimension, so this cannot fail.
        (try? tfidf.transform(vectorizer.transform(text))) ?? SparseVector(zeros: vectorizer.dimension)
    }

    /// The probability that `text` belongs to the positive class.
    public func predictProbability(_ text: String) -> Double {
        model.predictProbability(features(text))
    }

    /// Whether `text` scores at or above ``threshold``.
    public func predict(_ text: String) -> Bool {
        predictProbability(text) >= threshold
    }
}
