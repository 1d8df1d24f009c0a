import Testing
import Learning

@Suite("Sparse vectors")
struct SparseVectorTests {
    @Test func mergesPairsAndComputesProducts() throws {
        let a = try SparseVector(dimension: 10, pairs: [(5, 1), (2, 3), (5, 1), (7, 0)])
        #expect(a.indices == [2, 5])
        #expect(a.values == [3, 2])
        let b = try SparseVector(dimension: 10, indices: [1, 5, 9], values: [4, 5, 6])
        #expect(a.dot(b) == 10)
        #expect(a.dot([0, 0, 1, 0, 0, 2]) == 7)
        #expect(close(a.l2Norm, 13.0.squareRoot()))
        #expect(close(a.l2Normalized().l2Norm, 1))
        #expect(a[5] == 2 && a[4] == 0)
    }

    @Test func rejectsBadIndices() {
        #expect(throws: LearningError.self) { try SparseVector(dimension: 3, indices: [2, 1], values: [1, 1]) }
        #expect(throws: LearningError.self) { try SparseVector(dimension: 3, indices: [3], values: [1]) }
        #expect(throws: LearningError.self) { try SparseVector(dimension: 3, indices: [1], values: []) }
        #expect(throws: LearningError.self) { try SparseVector(dimension: 3, pairs: [(-1, 1)]) }
    }
}
