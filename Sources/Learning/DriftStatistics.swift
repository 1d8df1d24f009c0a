import Foundation

/// Statistics that compare a current sample of a score or feature with a reference sample.
public enum DriftStatistics {
    /// How population-stability bins are formed.
    public enum Binning: Sendable, Equatable {
        /// `count` bins cut at the reference sample's quantiles (duplicate cuts merged).
        case quantiles(Int)
        /// Bins cut at these strictly increasing interior edges; values at or below the
        /// first edge fall in the first bin and values above the last in the last bin.
        case edges([Double])
    }

    /// The population stability index of two histograms over the same bins:
    /// `Σ (c − r) · ln(c / r)` over bin proportions, with an empty bin's proportion
    /// replaced by `epsilon` so the logarithm stays finite.
    /// - Throws: ``LearningError`` for mismatched or empty histograms, negative counts or
    ///   a non-positive epsilon.
    public static func populationStabilityIndex(referenceCounts: [Double], currentCounts: [Double], epsilon: Double = 1e-4) throws -> Double {
        guard referenceCounts.count == currentCounts.count else {
            throw LearningError.lengthMismatch(expected: referenceCounts.count, actual: currentCounts.count)
        }
        guard epsilon > 0 else { throw LearningError.invalidArgument("epsilon must be positive") }
        guard (referenceCounts + currentCounts).allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw LearningError.invalidArgument("counts must be finite and non-negative")
        }
        let referenceTotal = referenceCounts.reduce(0, +)
        let currentTotal = currentCounts.reduce(0, +)
        guard referenceTotal > 0, currentTotal > 0 else { throw LearningError.emptyInput("histogram") }
        var psi = 0.0
        for (r, c) in zip(referenceCounts, currentCounts) {
            let expected = r > 0 ? r / referenceTotal : epsilon
            let actual = c > 0 ? c / currentTotal : epsilon
            psi += (actual - expected) * log(actual / expected)
        }
        return psi
    }

    /// The population stability index of two samples binned as `binning` says.
    /// - Throws: ``LearningError`` for empty samples, NaN values or invalid bins.
    public static func populationStabilityIndex(reference: [Double], current: [Double], binning: Binning = .quantiles(10), epsilon: Double = 1e-4) throws -> Double {
        guard !reference.isEmpty else { throw LearningError.emptyInput("reference") }
        guard !current.isEmpty else { throw LearningError.emptyInput("current") }
        guard !(reference + current).contains(where: \.isNaN) else { throw LearningError.invalidArgument("samples contain NaN") }
        let cuts = try edges(for: binning, reference: reference)
        return try populationStabilityIndex(
            referenceCounts: histogram(reference, edges: cuts),
            currentCounts: histogram(current, edges: cuts),
            epsilon: epsilon
        )
    }

    /// The interior bin edges `binning` gives for `reference`.
    /// - Throws: ``LearningError/invalidArgument(_:)`` for fewer than one bin or edges
    ///   that are not strictly increasing.
    public static func edges(for binning: Binning, reference: [Double]) throws -> [Double] {
        switch binning {
        case .edges(let cuts):
            for k in cuts.indices.dropFirst() where !(cuts[k] > cuts[k - 1]) {
                throw LearningError.invalidArgument("edges must be strictly increasing")
            }
            return cuts
        case .quantiles(let count):
            guard count >= 1 else { throw LearningError.invalidArgument("bin count must be at least 1") }
            guard !reference.isEmpty else { throw LearningError.emptyInput("reference") }
            let sorted = reference.sorted()
            var cuts: [Double] = []
            for k in 1..<max(1, count) {
                // Linear interpolation between order statistics (numpy's default quantile).
                let position = Double(k) / Double(count) * Double(sorted.count - 1)
                let low = Int(position.rounded(.down))
                let high = min(low + 1, sorted.count - 1)
                let value = sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
                if cuts.last.map({ value > $0 }) ?? true { cuts.append(value) }
            }
            return cuts
        }
    }

    /// Counts of `values` per bin: bin `i` holds values in `(edges[i-1], edges[i]]`.
    public static func histogram(_ values: [Double], edges: [Double]) -> [Double] {
        var counts = [Double](repeating: 0, count: edges.count + 1)
        for value in values {
            var low = 0
            var high = edges.count
            while low < high {
                let mid = (low + high) / 2
                if edges[mid] < value { low = mid + 1 } else { high = mid }
            }
            counts[low] += 1
        }
        return counts
    }

    /// The two-sample Kolmogorov–Smirnov statistic: the largest vertical distance between
    /// the two empirical distribution functions.
    /// - Throws: ``LearningError`` for an empty sample or NaN values.
    public static func kolmogorovSmirnov(_ first: [Double], _ second: [Double]) throws -> Double {
        guard !first.isEmpty else { throw LearningError.emptyInput("first") }
        guard !second.isEmpty else { throw LearningError.emptyInput("second") }
        guard !(first + second).contains(where: \.isNaN) else { throw LearningError.invalidArgument("samples contain NaN") }
        let a = first.sorted()
        let b = second.sorted()
        var i = 0
        var j = 0
        var statistic = 0.0
        while i < a.count || j < b.count {
            // Step past every copy of the next value in both samples before comparing,
            // so ties do not create a spurious gap.
            let value = min(i < a.count ? a[i] : .infinity, j < b.count ? b[j] : .infinity)
            while i < a.count, a[i] == value { i += 1 }
            while j < b.count, b[j] == value { j += 1 }
            statistic = max(statistic, abs(Double(i) / Double(a.count) - Double(j) / Double(b.count)))
        }
        return statistic
    }
}
