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
        return try train(counts: hashedCounts(texts, vectorizer: vectorizer), labels: labels, vectorizer: vectorizer,
                         sublinearTF: sublinearTF, configuration: configuration, threshold: threshold)
    }

    /// The hashed counts of many texts, computed on all cores. The vectoriser learns nothing,
    /// so cross-validation and the final fit can share one pass over the texts.
    public static func hashedCounts(_ texts: [String], vectorizer: HashingVectorizer) -> [SparseVector] {
        Parallel.map(texts, vectorizer.transform)
    }

    /// Fits TF-IDF and logistic regression on counts from ``hashedCounts(_:vectorizer:)``.
    /// - Throws: ``LearningError`` for empty or mismatched input, counts of another
    ///   dimension, or a single class.
    public static func train(
        counts: [SparseVector],
        labels: [Bool],
        vectorizer: HashingVectorizer,
        sublinearTF: Bool = false,
        configuration: LogisticRegression.Configuration = .init(),
        threshold: Double = 0.5
    ) throws -> TextClassifier {
        guard counts.count == labels.count else { throw LearningError.lengthMismatch(expected: counts.count, actual: labels.count) }
        let tfidf = try TFIDFTransformer.fit(counts, dimension: vectorizer.dimension, sublinearTF: sublinearTF)
        let features = try counts.map(tfidf.transform)
        let model = try LogisticRegression.fit(features, labels: labels, configuration: configuration)
        return try TextClassifier(vectorizer: vectorizer, tfidf: tfidf, model: model, threshold: threshold)
    }

    /// Out-of-fold probabilities: each example scored by the model fitted on the other folds
    /// (folds are fitted side by side on all cores). What an evaluation report, a threshold
    /// choice or a comparison of settings is computed from, with no example scored by a
    /// model that saw it.
    /// - Throws: ``LearningError`` as ``train(counts:labels:vectorizer:sublinearTF:configuration:threshold:)``.
    public static func crossValidatedProbabilities(
        counts: [SparseVector],
        labels: [Bool],
        folds: StratifiedKFold,
        vectorizer: HashingVectorizer,
        sublinearTF: Bool = false,
        configuration: LogisticRegression.Configuration = .init()
    ) throws -> [Double] {
        guard counts.count == labels.count else { throw LearningError.lengthMismatch(expected: counts.count, actual: labels.count) }
        let fitted = Parallel.map(folds.folds) { fold in
            Result {
                try train(counts: fold.training.map { counts[$0] }, labels: fold.training.map { labels[$0] }, vectorizer: vectorizer,
                          sublinearTF: sublinearTF, configuration: configuration)
            }
        }
        var probabilities = [Double](repeating: .nan, count: counts.count)
        for (fold, model) in zip(folds.folds, fitted) {
            let model = try model.get()
            for index in fold.validation { probabilities[index] = model.probability(counts: counts[index]) }
        }
        return probabilities
    }

    /// The probability of the positive class for counts from the vectoriser.
    public func probability(counts: SparseVector) -> Double {
        // The model's dot product with the weighted (and normalised) vector, worked out in one
        // pass without building it: this is on the path of every message sent.
        sigmoid(tfidf.weightedDot(counts, model.weights) + model.intercept)
    }

    /// The share of `counts`' features that no training text had (see ``FeatureVocabulary``).
    public func unseenShare(counts: SparseVector) -> Double {
        tfidf.vocabulary.unseenShare(counts)
    }

    /// The TF-IDF vector the model sees for `text`.
    public func features(_ text: String) -> SparseVector {
        // The vectoriser and transformer were checked to share a dimension, so this cannot fail.
        (try? tfidf.transform(vectorizer.transform(text))) ?? SparseVector(zeros: vectorizer.dimension)
    }

    /// The probability that `text` belongs to the positive class.
    public func predictProbability(_ text: String) -> Double {
        probability(counts: vectorizer.transform(text))
    }

    /// Whether `text` scores at or above ``threshold``.
    public func predict(_ text: String) -> Bool {
        predictProbability(text) >= threshold
    }
}
