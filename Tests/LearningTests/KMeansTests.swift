import Testing
import Learning

@Suite("k-means")
struct KMeansTests {
    func blobs() -> [[Double]] {
        var generator = SeededGenerator(seed: 11)
        let centres: [[Double]] = [[0, 0], [10, 10], [0, 10]]
        return centres.flatMap { centre in
            (0..<10).map { _ in centre.map { $0 + generator.nextUnitDouble() - 0.5 } }
        }
    }

    @Test func findsThreeObviousClusters() throws {
        let points = blobs()
        let result = try KMeans.fit(dense: points, k: 3, seed: 5)
        for blob in 0..<3 {
            let labels = Set(result.assignments[(blob * 10)..<(blob * 10 + 10)])
            #expect(labels.count == 1)
        }
        #expect(Set(result.assignments).count == 3)
        #expect(result.inertia < 30 * 0.5)
        #expect(result.predict(sparse([10.2, 9.9])) == result.assignments[10])
    }

    @Test func sameSeedSameResult() throws {
        let points = blobs()
        #expect(try KMeans.fit(dense: points, k: 3, seed: 5) == KMeans.fit(dense: points, k: 3, seed: 5))
        let sparsePoints = points.map { sparse($0) }
        #expect(try KMeans.fit(sparsePoints, k: 3, seed: 8) == KMeans.fit(sparsePoints, k: 3, seed: 8))
    }

    @Test func rejectsBadK() {
        #expect(throws: LearningError.self) { try KMeans.fit(dense: [[1.0]], k: 2, seed: 1) }
        #expect(throws: LearningError.self) { try KMeans.fit(dense: [[1.0]], k: 0, seed: 1) }
    }
}
