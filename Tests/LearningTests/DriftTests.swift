import Testing
import Learning

@Suite("Drift statistics")
struct DriftTests {
    @Test func psiOfTwoHistograms() throws {
        // Proportions .1 .2 .3 .4 vs .2 .2 .3 .3: 0.1·ln 2 + (−0.1)·ln 0.75.
        let psi = try DriftStatistics.populationStabilityIndex(referenceCounts: [10, 20, 30, 40], currentCounts: [20, 20, 30, 30])
        #expect(close(psi, 0.09808292530117264, 1e-12))
        #expect(close(try DriftStatistics.populationStabilityIndex(referenceCounts: [1, 2], currentCounts: [2, 4]), 0))
    }

    @Test func psiUsesEpsilonForEmptyBins() throws {
        // Reference .5 .5 ε against .4 .4 .2.
        let psi = try DriftStatistics.populationStabilityIndex(referenceCounts: [5, 5, 0], currentCounts: [4, 4, 2], epsilon: 1e-4)
        #expect(close(psi, 1.5640491119253044, 1e-12))
    }

    @Test func psiOfSamplesWithFixedEdges() throws {
        let reference: [Double] = [1, 2, 3, 4, 5, 6, 7, 8]
        let current: [Double] = [1, 1, 2, 3, 6, 7, 8, 9, 9, 9]
        #expect(DriftStatistics.histogram(reference, edges: [2.5, 5.5]) == [2, 3, 3])
        #expect(DriftStatistics.histogram(current, edges: [2.5, 5.5]) == [3, 1, 6])
        let psi = try DriftStatistics.populationStabilityIndex(reference: reference, current: current, binning: .edges([2.5, 5.5]))
        #expect(close(psi, 0.4783497504151261, 1e-12))
    }

    @Test func quantileEdgesInterpolateLikeNumpy() throws {
        let reference = (1...10).map(Double.init)
        #expect(close(try DriftStatistics.edges(for: .quantiles(4), reference: reference), [3.25, 5.5, 7.75]))
        // Repeated values collapse duplicate cuts.
        #expect(try DriftStatistics.edges(for: .quantiles(4), reference: [1, 1, 1, 1, 1]) == [1])
        // A sample compared with itself is stable.
        #expect(try DriftStatistics.populationStabilityIndex(reference: reference, current: reference) == 0)
        #expect(throws: LearningError.self) { try DriftStatistics.edges(for: .edges([2, 1]), reference: []) }
    }

    @Test func kolmogorovSmirnovByHand() throws {
        // ECDF gaps: at 2 → .5−0; at 3 → .75−.2; at 4 → 1−.4 = .6, the largest.
        #expect(close(try DriftStatistics.kolmogorovSmirnov([1, 2, 3, 4], [3, 4, 5, 6, 7]), 0.6))
        #expect(close(try DriftStatistics.kolmogorovSmirnov([1, 2, 3], [1, 2, 3]), 0))
        #expect(close(try DriftStatistics.kolmogorovSmirnov([1, 2], [3, 4]), 1))
        // Ties across samples: both ECDFs jump together at 1.
        #expect(close(try DriftStatistics.kolmogorovSmirnov([1, 1, 2], [1, 2, 2]), 1.0 / 3.0))
        #expect(throws: LearningError.self) { try DriftStatistics.kolmogorovSmirnov([], [1]) }
    }
}
