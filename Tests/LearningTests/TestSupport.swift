import Learning

/// Whether two doubles agree within an absolute tolerance.
func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-9) -> Bool {
    abs(a - b) <= tolerance
}

/// Whether two arrays agree element-wise within an absolute tolerance.
func close(_ a: [Double], _ b: [Double], _ tolerance: Double = 1e-9) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance }
}

/// A dense vector as a sparse one, for terse test data.
func sparse(_ values: [Double]) -> SparseVector {
    SparseVector(dense: values)
}
