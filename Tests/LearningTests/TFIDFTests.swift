import Testing
import Learning

@Suite("TF-IDF")
struct TFIDFTests {
    // The count matrix from scikit-learn's user guide (feature_extraction, "Tf–idf term weighting").
    let counts: [SparseVector] = [[3, 0, 1], [2, 0, 0], [3, 0, 0], [4, 0, 0], [3, 2, 0], [3, 0, 2]].map { sparse($0) }

    @Test func matchesScikitLearnSmoothed() throws {
        let tfidf = try TFIDFTransformer.fit(counts, dimension: 3)
        #expect(close(tfidf.idf, [1.0, 2.252762968495368, 1.8472978603872037], 1e-12))
        let rows = try counts.map { try tfidf.transform($0).toDense() }
        #expect(close(rows[0], [0.85151335, 0, 0.52433293], 1e-8))
        #expect(close(rows[1], [1, 0, 0], 1e-12))
        #expect(close(rows[4], [0.55422893, 0.83236428, 0], 1e-8))
        #expect(close(rows[5], [0.63035731, 0, 0.77630514], 1e-8))
    }

    @Test func matchesScikitLearnUnsmoothed() throws {
        let tfidf = try TFIDFTransformer.fit(counts, dimension: 3, smoothIDF: false)
        let rows = try counts.map { try tfidf.transform($0).toDense() }
        #expect(close(rows[0], [0.81940995, 0, 0.57320793], 1e-8))
        #expect(close(rows[4], [0.47330339, 0.88089948, 0], 1e-8))
        #expect(close(rows[5], [0.58149261, 0, 0.81355169], 1e-8))
    }

    @Test func threeDocumentCorpusThroughTheVectoriser() throws {
        // df(cat)=3, df(dog)=df(fish)=1, n=3: idf(cat)=ln(4/4)+1=1, idf(dog)=ln(4/2)+1.
        let vectorizer = try HashingVectorizer(wordNGrams: 1...1, bucketBits: 20)
        let documents = ["cat dog", "cat fish", "cat"].map(vectorizer.transform)
        let tfidf = try TFIDFTransformer.fit(documents, dimension: vectorizer.dimension)
        let first = try tfidf.transform(documents[0])
        #expect(close(first[vectorizer.bucket(for: "cat", kind: .word).index], 0.5085423203783267, 1e-12))
        #expect(close(first[vectorizer.bucket(for: "dog", kind: .word).index], 0.8610369959439764, 1e-12))
        #expect(close(try tfidf.transform(documents[2]).values, [1.0]))
    }

    @Test func sublinearTermFrequency() throws {
        let tfidf = try TFIDFTransformer.fit([sparse([3, 1])], dimension: 2, sublinearTF: true, normalize: false)
        // One document: every idf is ln(2/2)+1 = 1, so values are 1 + ln(tf).
        #expect(close(try tfidf.transform(sparse([3, 1])).toDense(), [1 + 1.0986122886681098, 1], 1e-12))
    }

    @Test func rejectsWrongDimension() throws {
        let tfidf = try TFIDFTransformer.fit(counts, dimension: 3)
        #expect(throws: LearningError.dimensionMismatch(expected: 3, actual: 2)) { try tfidf.transform(sparse([1, 1])) }
        #expect(throws: LearningError.self) { try TFIDFTransformer.fit([], dimension: 3) }
    }
}
