import Testing
import Learning

@Suite("Binary metrics")
struct MetricTests {
    @Test func confusionMatrixFromTenHandLabelledPredictions() throws {
        let truth: [Bool] = [true, true, true, true, false, false, false, false, false, true]
        let predicted: [Bool] = [true, false, true, true, false, true, false, false, true, true]
        let matrix = try ConfusionMatrix(truth: truth, predicted: predicted)
        #expect(matrix == ConfusionMatrix(truePositives: 4, falsePositives: 2, trueNegatives: 3, falseNegatives: 1))
        #expect(close(matrix.precision, 0.6666666666666666))
        #expect(close(matrix.recall, 0.8))
        #expect(close(matrix.f1, 0.7272727272727273))  // 8 / 11
        #expect(close(matrix.accuracy, 0.7))
        #expect(close(matrix.falsePositiveRate, 0.4))
    }

    @Test func zeroDivisionGivesZero() throws {
        let matrix = try ConfusionMatrix(truth: [false, false], predicted: [false, false])
        #expect(matrix.precision == 0 && matrix.recall == 0 && matrix.f1 == 0)
        #expect(throws: LearningError.self) { try ConfusionMatrix(truth: [true], predicted: []) }
    }

    @Test func scikitLearnDocumentationExample() throws {
        let scores = [0.1, 0.4, 0.35, 0.8]
        let labels = [false, false, true, true]
        #expect(close(try ClassificationMetrics.rocAUC(scores: scores, labels: labels), 0.75))
        #expect(close(try ClassificationMetrics.averagePrecision(scores: scores, labels: labels), 0.8333333333333333))
    }

    @Test func rocAUCCountsTiesAsHalf() throws {
        // Positives 0.9, 0.8, 0.5 against negatives 0.8, 0.5, 0.2:
        // 0.9 wins 3; 0.8 ties 1, wins 2 → 2.5; 0.5 loses 1, ties 1, wins 1 → 1.5. 7 of 9 pairs.
        let scores = [0.9, 0.8, 0.8, 0.5, 0.5, 0.2]
        let labels = [true, false, true, true, false, false]
        #expect(close(try ClassificationMetrics.rocAUC(scores: scores, labels: labels), 7.0 / 9.0))
        #expect(close(try ClassificationMetrics.rocAUC(scores: [0.5, 0.5], labels: [true, false]), 0.5))
        #expect(throws: LearningError.singleClass) { try ClassificationMetrics.rocAUC(scores: [1, 2], labels: [true, true]) }
    }

    @Test func averagePrecisionWithTies() throws {
        // Threshold 0.9: P=1, R=1/2. Threshold 0.5 (ties two items, one positive): P=2/3, R=1.
        let ap = try ClassificationMetrics.averagePrecision(scores: [0.9, 0.5, 0.5], labels: [true, true, false])
        #expect(close(ap, 0.5 * 1 + 0.5 * (2.0 / 3.0)))
    }

    @Test func calibrationBinsAndBrierScore() throws {
        let probabilities = [0.1, 0.2, 0.3, 0.8, 0.9, 0.95]
        let labels = [false, false, true, true, false, true]
        let curve = try CalibrationCurve(probabilities: probabilities, labels: labels, binCount: 2)
        #expect(curve.bins.count == 2)
        #expect(close(curve.bins[0].meanPredicted, 0.2))
        #expect(close(curve.bins[0].observedFrequency, 1.0 / 3.0))
        #expect(close(curve.bins[1].meanPredicted, 0.8833333333333333))
        #expect(close(curve.bins[1].observedFrequency, 2.0 / 3.0))
        #expect(close(curve.brierScore, 0.23208333333333334))
        #expect(close(try ClassificationMetrics.brierScore(probabilities: [1, 0], labels: [true, true]), 0.5))
        #expect(throws: LearningError.self) { try CalibrationCurve(probabilities: [1.5], labels: [true]) }
    }

    @Test func thresholdForTargetPrecision() throws {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
        let labels = [true, true, false, true, false, true, false]
        let choice = try #require(try ThresholdSelector.threshold(forPrecision: 0.75, scores: scores, labels: labels))
        #expect(choice == .init(threshold: 0.6, precision: 0.75, recall: 0.75))
        let strict = try #require(try ThresholdSelector.threshold(forPrecision: 1, scores: scores, labels: labels))
        #expect(strict == .init(threshold: 0.8, precision: 1, recall: 0.5))
        #expect(try ThresholdSelector.threshold(forPrecision: 1, scores: [0.9, 0.1], labels: [false, true]) == nil)
    }
}
