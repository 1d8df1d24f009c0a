/// k-means clustering with k-means++ seeding, deterministic for a seed.
public struct KMeans: Sendable, Equatable {
    /// Dense cluster centres.
    public let centroids: [[Double]]
    /// The cluster of each training point.
    public let assignments: [Int]
    /// The sum of squared distances from each point to its centre.
    public let inertia: Double
    /// The Lloyd iterations run.
    public let iterations: Int

    /// Clusters sparse points.
    /// - Throws: ``LearningError`` when `k` is outside `1...points.count`, points differ in
    ///   dimension, or `maxIterations < 1`.
    public static func fit(_ points: [SparseVector], k: Int, seed: UInt64, maxIterations: Int = 300, tolerance: Double = 1e-9) throws -> KMeans {
        guard let first = points.first else { throw LearningError.emptyInput("points") }
        guard k >= 1, k <= points.count else { throw LearningError.invalidArgument("k must be in 1...points.count") }
        guard maxIterations >= 1 else { throw LearningError.invalidArgument("maxIterations must be at least 1") }
        let dimension = first.dimension
        for point in points where point.dimension != dimension {
            throw LearningError.dimensionMismatch(expected: dimension, actual: point.dimension)
        }
        let norms = points.map(\.squaredNorm)
        var generator = SeededGenerator(seed: seed)

        // k-means++: each new centre is drawn with probability proportional to D².
        var centroids: [[Double]] = [points[generator.nextInt(below: points.count)].toDense()]
        var closest = points.indices.map { distance(points[$0], norms[$0], centroids[0], squaredNorm(centroids[0])) }
        while centroids.count < k {
            let total = closest.reduce(0, +)
            var chosen = 0
            if total > 0 {
                var target = generator.nextUnitDouble() * total
                chosen = closest.count - 1
                for (index, d) in closest.enumerated() {
                    target -= d
                    if target < 0 { chosen = index; break }
                }
            } else {
                // Every point coincides with a centre; any choice is as good.
                chosen = generator.nextInt(below: points.count)
            }
            let centre = points[chosen].toDense()
            let centreNorm = squaredNorm(centre)
            centroids.append(centre)
            for index in points.indices {
                closest[index] = min(closest[index], distance(points[index], norms[index], centre, centreNorm))
            }
        }

        var assignments = [Int](repeating: 0, count: points.count)
        var inertia = 0.0
        var iteration = 0
        while iteration < maxIterations {
            iteration += 1
            let centroidNorms = centroids.map(squaredNorm)
            inertia = 0
            for index in points.indices {
                var best = 0
                var bestDistance = Double.infinity
                for c in centroids.indices {
                    let d = distance(points[index], norms[index], centroids[c], centroidNorms[c])
                    if d < bestDistance { bestDistance = d; best = c }
                }
                assignments[index] = best
                inertia += bestDistance
            }
            var sums = [[Double]](repeating: [Double](repeating: 0, count: dimension), count: k)
            var counts = [Int](repeating: 0, count: k)
            for (index, point) in points.enumerated() {
                let c = assignments[index]
                counts[c] += 1
                for (n, position) in point.indices.enumerated() { sums[c][position] += point.values[n] }
            }
            var shift = 0.0
            for c in 0..<k where counts[c] > 0 {
                // An empty cluster keeps its previous centre.
                let updated = sums[c].map { $0 / Double(counts[c]) }
                shift = max(shift, zip(updated, centroids[c]).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) })
                centroids[c] = updated
            }
            if shift <= tolerance { break }
        }
        inertia = 0
        let centroidNorms = centroids.map(squaredNorm)
        for index in points.indices {
            inertia += distance(points[index], norms[index], centroids[assignments[index]], centroidNorms[assignments[index]])
        }
        return KMeans(centroids: centroids, assignments: assignments, inertia: inertia, iterations: iteration)
    }

    /// Clusters dense points.
    /// - Throws: as the sparse overload does.
    public static func fit(dense points: [[Double]], k: Int, seed: UInt64, maxIterations: Int = 300, tolerance: Double = 1e-9) throws -> KMeans {
        try fit(points.map { SparseVector(dense: $0) }, k: k, seed: seed, maxIterations: maxIterations, tolerance: tolerance)
    }

    /// The index of the nearest centre.
    public func predict(_ point: SparseVector) -> Int {
        var best = 0
        var bestDistance = Double.infinity
        let norm = point.squaredNorm
        for c in centroids.indices {
            let d = Self.distance(point, norm, centroids[c], Self.squaredNorm(centroids[c]))
            if d < bestDistance { bestDistance = d; best = c }
        }
        return best
    }

    private static func squaredNorm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 } }

    /// ‖x − c‖² expanded so a sparse point costs O(nonzeros); clamped at zero against rounding.
    private static func distance(_ x: SparseVector, _ xNorm: Double, _ c: [Double], _ cNorm: Double) -> Double {
        max(0, xNorm - 2 * x.dot(c) + cNorm)
    }
}
