import Testing
import Learning

@Suite("Logistic regression")
struct LogisticRegressionTests {
    /// Two features with label `x0 + x1 > 1`, leaving a margin around the boundary.
    func separable() -> ([SparseVector], [Bool]) {
        var x: [SparseVector] = []
        var y: [Bool] = []
        for i in 0...10 {
            for j in 0...10 {
                let a = Double(i) / 10
                let b = Double(j) / 10
                guard abs(a + b - 1) > 0.15 else { continue }
                x.append(sparse([a, b]))
                y.append(a + b > 1)
            }
        }
        return (x, y)
    }

    @Test func learnsSeparableProblemPerfectly() throws {
        let (x, y) = separable()
        let model = try LogisticRegression.fit(x, labels: y, configuration: .init(penalty: .l2(1e-4), maxIterations: 3000))
        let correct = zip(x, y).filter { model.predict($0) == $1 }.count
        #expect(correct == x.count)
        #expect(model.weights[0] > 0 && model.weights[1] > 0 && model.intercept < 0)
    }

    /// Feature 0 decides the label; features 1–4 are uniform noise.
    func oneRelevantFeature() -> ([SparseVector], [Bool]) {
        var generator = SeededGenerator(seed: 7)
        var x: [SparseVector] = []
        var y: [Bool] = []
        for _ in 0..<200 {
            let row = (0..<5).map { _ in generator.nextUnitDouble() * 2 - 1 }
            x.append(sparse(row))
            y.append(row[0] > 0)
        }
        return (x, y)
    }

    @Test func lbfgsReachesTheFullBatchOptimumInFewerSteps() throws {
        // A smooth, strictly convex problem has one minimum: both solvers must find it.
        let (x, y) = oneRelevantFeature()
        let fista = try LogisticRegression.fit(x, labels: y, configuration: .init(penalty: .l2(0.01), maxIterations: 20_000, tolerance: 1e-12))
        let lbfgs = try LogisticRegression.fit(x, labels: y, configuration: .init(penalty: .l2(0.01), solver: .lbfgs(memory: 10), tolerance: 1e-10))
        #expect(close(lbfgs.weights, fista.weights, 1e-6))
        #expect(close(lbfgs.intercept, fista.intercept, 1e-6))
        #expect(lbfgs.iterations < fista.iterations / 5, "\(lbfgs.iterations) against \(fista.iterations)")
        // Seedless, so the same data always gives the same weights, bit for bit.
        let again = try LogisticRegression.fit(x, labels: y, configuration: .init(penalty: .l2(0.01), solver: .lbfgs(memory: 10), tolerance: 1e-10))
        #expect(again == lbfgs)
    }

    @Test func lbfgsRefusesL1AndAnEmptyMemory() {
        let (x, y) = oneRelevantFeature()
        #expect(throws: LearningError.self) { try LogisticRegression.fit(x, labels: y, configuration: .init(penalty: .l1(0.1), solver: .lbfgs(memory: 5))) }
        #expect(throws: LearningError.self) { try LogisticRegression.fit(x, labels: y, configuration: .init(solver: .lbfgs(memory: 0))) }
    }

    @Test func l1ZeroesIrrelevantWeightsWhereL2DoesNot() throws {
        let (x, y) = oneRelevantFeature()
        let lasso = try LogisticRegression.fit(x, labels: y, configuration: .init(penalty: .l1(0.1)))
        let ridge = try LogisticRegression.fit(x, labels: y, configuration: .init(penalty: .l2(0.1)))
        #expect(lasso.weights[0] > 0)
        #expect(lasso.weights[1...4].allSatisfy { $0 == 0 })
        #expect(ridge.weights[1...4].allSatisfy { $0 != 0 })
    }

    @Test func balancedClassWeightsRaiseRareClassRecall() throws {
        // 90 negatives spread over [0, 0.89], 10 positives over [0.6, 1.05]: overlapping and rare.
        var x: [SparseVector] = []
        var y: [Bool] = []
        for i in 0..<90 { x.append(sparse([Double(i) / 100])); y.append(false) }
        for i in 0..<10 { x.append(sparse([0.6 + Double(i) * 0.05])); y.append(true) }
        func recall(_ model: LogisticRegression) throws -> Double {
            try ConfusionMatrix(truth: y, predicted: x.map { model.predict($0) }).recall
        }
        let plain = try LogisticRegression.fit(x, labels: y, configuration: .init(penalty: .l2(1e-3)))
        let balanced = try LogisticRegression.fit(x, labels: y, configuration: .init(penalty: .l2(1e-3), classWeight: .balanced))
        #expect(try recall(balanced) > recall(plain))
        // Unweighted, the model finds 1 of 10 rare positives; balanced weighting finds 8.
        #expect(try recall(plain) <= 0.2)
        #expect(try recall(balanced) >= 0.8)
    }

    @Test func fittingIsBitIdenticalAcrossRuns() throws {
        let (x, y) = oneRelevantFeature()
        let configuration = LogisticRegression.Configuration(penalty: .l1(0.01))
        let first = try LogisticRegression.fit(x, labels: y, configuration: configuration)
        let second = try LogisticRegression.fit(x, labels: y, configuration: configuration)
        #expect(first.weights == second.weights)
        #expect(first.intercept == second.intercept)
        #expect(first == second)
    }

    @Test func miniBatchSolverIsBitIdenticalForASeed() throws {
        let (x, y) = oneRelevantFeature()
        func fit(seed: UInt64) throws -> LogisticRegression {
            try LogisticRegression.fit(x, labels: y, configuration: .init(penalty: .l2(1e-3), solver: .miniBatch(batchSize: 16, epochs: 30, seed: seed)))
        }
        let first = try fit(seed: 1)
        let again = try fit(seed: 1)
        let other = try fit(seed: 2)
        #expect(first.weights == again.weights && first.intercept == again.intercept)
        #expect(first.weights != other.weights)
        let accuracy = zip(x, y).filter { first.predict($0) == $1 }.count
        #expect(accuracy >= 190)
    }

    @Test func miniBatchSolverLearnsTheSeparableProblem() throws {
        let (x, y) = separable()
        let model = try LogisticRegression.fit(x, labels: y, configuration: .init(penalty: .l2(1e-5), solver: .miniBatch(batchSize: 8, epochs: 200, seed: 3)))
        #expect(zip(x, y).allSatisfy { model.predict($0) == $1 })
    }

    @Test func rejectsBadInput() {
        #expect(throws: LearningError.emptyInput("examples")) { try LogisticRegression.fit([], labels: []) }
        #expect(throws: LearningError.singleClass) { try LogisticRegression.fit([sparse([1]), sparse([2])], labels: [true, true]) }
        #expect(throws: LearningError.lengthMismatch(expected: 2, actual: 1)) {
            try LogisticRegression.fit([sparse([1]), sparse([2])], labels: [true])
        }
        #expect(throws: LearningError.self) {
            try LogisticRegression.fit([sparse([1]), sparse([2])], labels: [true, false], configuration: .init(penalty: .l2(-1)))
        }
    }
}
