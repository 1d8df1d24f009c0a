import Testing
import Learning

@Suite("Cross-validation")
struct CrossValidationTests {
    let labels: [Bool] = (0..<23).map { $0 % 3 == 0 }  // 8 positives, 15 negatives

    @Test func stratifiedFoldsKeepProportionsAndCoverEveryExampleOnce() throws {
        let split = try StratifiedKFold(labels: labels, k: 5, seed: 42)
        #expect(split.folds.count == 5)
        let positivesPerFold = split.folds.map { $0.validation.filter { labels[$0] }.count }
        #expect(positivesPerFold.max()! - positivesPerFold.min()! <= 1)
        let sizes = split.folds.map(\.validation.count)
        #expect(sizes.max()! - sizes.min()! <= 1)
        #expect(split.folds.flatMap(\.validation).sorted() == Array(0..<23))
        for fold in split.folds {
            #expect(Set(fold.training).isDisjoint(with: fold.validation))
            #expect(fold.training.count + fold.validation.count == 23)
        }
    }

    @Test func foldsAreDeterministicForASeed() throws {
        let a = try StratifiedKFold(labels: labels, k: 4, seed: 1)
        let b = try StratifiedKFold(labels: labels, k: 4, seed: 1)
        let c = try StratifiedKFold(labels: labels, k: 4, seed: 2)
        #expect(a == b)
        #expect(a != c)
        #expect(throws: LearningError.self) { try StratifiedKFold(labels: labels, k: 1, seed: 1) }
        #expect(throws: LearningError.self) { try StratifiedKFold(labels: [true], k: 2, seed: 1) }
    }

    @Test func gridSearchPicksTheBestMeanF1() throws {
        // One feature; the "model" is a fixed cut, so the best cut is known: 0.5.
        let values = (0..<40).map { Double($0) / 40 }
        let labels = values.map { $0 >= 0.5 }
        let folds = try StratifiedKFold(labels: labels, k: 4, seed: 3)
        let grid = GridSearch.grid(["cut": [0.25, 0.5, 0.75]])
        #expect(grid.count == 3)
        let result = try GridSearch.run(candidates: grid, labels: labels, folds: folds) { parameters, _ in
            let cut = parameters["cut"] ?? 0
            return { values[$0] >= cut }
        }
        #expect(result.best.parameters["cut"] == 0.5)
        #expect(result.best.meanF1 == 1)
        #expect(result.candidates.map(\.foldF1.count) == [4, 4, 4])
    }

    @Test func gridIsACartesianProductInSortedOrder() {
        let grid = GridSearch.grid(["b": [1, 2], "a": [10, 20, 30]])
        #expect(grid.count == 6)
        #expect(grid[0] == ["a": 10, "b": 1])
        #expect(grid[1] == ["a": 10, "b": 2])
        #expect(grid[5] == ["a": 30, "b": 2])
    }

    @Test func learningCurveGrowsTheTrainingSet() throws {
        let values = (0..<60).map { Double($0) / 60 }
        let labels = values.map { $0 >= 0.5 }
        let x = values.map { sparse([$0]) }
        let folds = try StratifiedKFold(labels: labels, k: 3, seed: 9)
        let points = try LearningCurve.compute(fractions: [0.2, 0.5, 1], labels: labels, folds: folds, seed: 9) { indices in
            let model = try LogisticRegression.fit(indices.map { x[$0] }, labels: indices.map { labels[$0] }, configuration: .init(penalty: .l2(1e-4)))
            return { model.predict(x[$0]) }
        }
        #expect(points.map(\.fraction) == [0.2, 0.5, 1])
        #expect(points[0].trainingSize < points[1].trainingSize && points[1].trainingSize < points[2].trainingSize)
        #expect(points[2].trainingSize == 40)
        #expect(points.allSatisfy { (0...1).contains($0.trainingF1) && (0...1).contains($0.validationF1) })
        #expect(points[2].validationF1 > 0.9)
        #expect(throws: LearningError.self) {
            try LearningCurve.compute(fractions: [0], labels: labels, folds: folds, seed: 1) { _ in { _ in true } }
        }
    }

    @Test func foldsFromAnotherToolsAssignments() throws {
        let split = try StratifiedKFold(assignments: [0, 1, 2, 0, 1, 2, 0])
        #expect(split.folds.map(\.validation) == [[0, 3, 6], [1, 4], [2, 5]])
        #expect(split.folds[1].training == [0, 2, 3, 5, 6])
        #expect(throws: LearningError.self) { try StratifiedKFold(assignments: [0, 0]) }
        #expect(throws: LearningError.self) { try StratifiedKFold(assignments: [0, 2]) }
        #expect(throws: LearningError.self) { try StratifiedKFold(assignments: [-1, 0, 1]) }
    }

    @Test func crossValidatedProbabilitiesComeFromModelsThatDidNotSeeTheExample() throws {
        let texts = (0..<40).map { $0 % 4 == 0 ? "win a free prize now \($0)" : "see you at lunch \($0) ok" }
        let labels = (0..<40).map { $0 % 4 == 0 }
        let vectorizer = try HashingVectorizer(wordNGrams: 1...2, characterNGrams: 2...3, bucketBits: 12)
        let counts = TextClassifier.hashedCounts(texts, vectorizer: vectorizer)
        #expect(counts == texts.map(vectorizer.transform))
        let split = try StratifiedKFold(labels: labels, k: 4, seed: 3)
        let configuration = LogisticRegression.Configuration(penalty: .l2(1e-3), solver: .lbfgs(memory: 5), tolerance: 1e-8)
        let probabilities = try TextClassifier.crossValidatedProbabilities(
            counts: counts, labels: labels, folds: split, vectorizer: vectorizer, configuration: configuration)
        for fold in split.folds {
            let model = try TextClassifier.train(texts: fold.training.map { texts[$0] }, labels: fold.training.map { labels[$0] },
                                                 vectorizer: vectorizer, configuration: configuration)
            for index in fold.validation {
                #expect(probabilities[index] == model.predictProbability(texts[index]))
                // The one-pass score is the score of the weighted vector the model sees.
                #expect(close(model.predictProbability(texts[index]), model.model.predictProbability(model.features(texts[index])), 1e-12))
            }
        }
        #expect(zip(probabilities, labels).allSatisfy { ($0 >= 0.5) == $1 })
    }
}
