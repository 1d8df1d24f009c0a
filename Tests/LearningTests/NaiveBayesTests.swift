import Testing
import Learning

@Suite("Multinomial naive Bayes")
struct NaiveBayesTests {
    @Test func matchesHandComputedPosterior() throws {
        // Class 0 totals [3, 1, 0] (N=4), class 1 totals [0, 1, 2] (N=3), alpha 1, d 3:
        // θ0 = [4/7, 2/7, 1/7], θ1 = [1/6, 2/6, 3/6]; priors 2/3 and 1/3.
        let x = [sparse([2, 1, 0]), sparse([1, 0, 0]), sparse([0, 1, 2])]
        let model = try MultinomialNaiveBayes.fit(x, labels: [0, 0, 1], alpha: 1)
        let query = sparse([1, 0, 1])
        #expect(close(model.jointLogLikelihood(query), [-2.9109910450989007, -3.58351893845611], 1e-12))
        #expect(close(model.predictProbability(query), 0.33793103448275863, 1e-12))
        #expect(model.predict(query) == 0)
        #expect(model.predict(sparse([0, 0, 3])) == 1)
    }

    @Test func handlesThreeClasses() throws {
        let x = [sparse([5, 0, 0]), sparse([0, 5, 0]), sparse([0, 0, 5])]
        let model = try MultinomialNaiveBayes.fit(x, labels: [0, 1, 2], alpha: 0.5)
        #expect(model.classCount == 3)
        #expect(model.predict(sparse([0, 1, 0])) == 1)
        #expect(close(model.predictProbabilities(sparse([0, 0, 1])).reduce(0, +), 1, 1e-12))
    }

    @Test func rejectsBadInput() {
        #expect(throws: LearningError.self) { try MultinomialNaiveBayes.fit([sparse([-1])], labels: [0]) }
        #expect(throws: LearningError.self) { try MultinomialNaiveBayes.fit([sparse([1])], labels: [0], alpha: 0) }
        #expect(throws: LearningError.self) { try MultinomialNaiveBayes.fit([sparse([1])], labels: [3], classCount: 2) }
    }
}
