import Foundation
import Learning
import NIOConcurrencyHelpers

/// Watches what each served version scores against the reference its training recorded:
/// over a sliding window of the last `window` messages it scored on this node, the population
/// stability index (PSI) of its score, of message length and of the share of unseen features.
///
/// PSI below 0.1 is read as no shift, 0.1-0.25 as a moderate one, and at or above
/// ``alertThreshold`` as a shift worth retraining for (the usual reading of PSI, and the
/// threshold the documented Prometheus alert uses). Each window keeps its histograms as it
/// goes, so observing a message is O(1) and reading the PSI costs a few dozen bins.
final class ModelDrift: Sendable {
    /// The PSI at which drift is reported as an alert.
    static let alertThreshold = 0.25

    enum Feature: String, CaseIterable, Sendable {
        case score
        case length
        case unknownShare = "unknown_share"

        func bins(of reference: DriftReference) -> [Double] {
            switch self {
            case .score: reference.scores
            case .length: reference.lengths
            case .unknownShare: reference.unknownShares
            }
        }

        /// Each bin's label, for charts.
        var labels: [String] {
            switch self {
            case .score, .unknownShare: (0..<10).map { String(format: "%.1f-%.1f", Double($0) / 10, Double($0 + 1) / 10) }
            case .length:
                zip([0] + DriftReference.lengthEdges, DriftReference.lengthEdges).map { "\(Int($0))-\(Int($1) - 1)" }
                    + ["\(Int(DriftReference.lengthEdges.last!))+"]
            }
        }
    }

    /// One scored message, as bins.
    struct Observation: Sendable {
        var score: UInt8
        var length: UInt8
        var unknownShare: UInt8

        init(score: Double, length: Int, unknownShare: Double) {
            self.score = UInt8(DriftReference.unitBin(score))
            self.length = UInt8(DriftReference.lengthBin(length))
            self.unknownShare = UInt8(DriftReference.unitBin(unknownShare))
        }
    }

    /// The drift of one version now (the API's `drift`).
    struct Report: Codable, Sendable, Equatable {
        struct FeatureDrift: Codable, Sendable, Equatable {
            var feature: String
            /// Nil until the window holds `minimum` messages.
            var psi: Double?
            /// Each bin's share in the training reference and in the window.
            var reference: [Double]
            var current: [Double]
            var labels: [String]
        }

        var version: String
        /// Messages in the window now.
        var window: Int
        /// The window's size, and how many it needs before a PSI is given.
        var capacity: Int
        var minimum: Int
        var threshold: Double
        /// Whether any feature's PSI is at or above the threshold.
        var alert: Bool
        var features: [FeatureDrift]
    }

    private struct Window {
        let model: String
        let reference: DriftReference
        var ring: [Observation] = []
        var next = 0
        var counts: [Feature: [Double]]
        var sinceGauges = 0

        init(model: String, reference: DriftReference) {
            self.model = model
            self.reference = reference
            counts = Dictionary(uniqueKeysWithValues: Feature.allCases.map { ($0, [Double](repeating: 0, count: $0.bins(of: reference).count)) })
        }

        mutating func add(_ observation: Observation, capacity: Int) {
            if ring.count < capacity {
                ring.append(observation)
            } else {
                let evicted = ring[next]
                move(evicted, by: -1)
                ring[next] = observation
                next = (next + 1) % capacity
            }
            move(observation, by: 1)
        }

        private mutating func move(_ observation: Observation, by delta: Double) {
            counts[.score]![Int(observation.score)] += delta
            counts[.length]![Int(observation.length)] += delta
            counts[.unknownShare]![Int(observation.unknownShare)] += delta
        }

        func psi(_ feature: Feature, minimum: Int) -> Double? {
            guard ring.count >= minimum else { return nil }
            return try? DriftStatistics.populationStabilityIndex(referenceCounts: feature.bins(of: reference), currentCounts: counts[feature]!)
        }
    }

    let capacity: Int
    let minimum: Int
    private let metrics: ModelMetrics?
    private let windows = NIOLockedValueBox<[String: Window]>([:])
    /// Gauges are set every this many observations (and on every report).
    private static let gaugeEvery = 50

    init(capacity: Int = 1000, minimum: Int = 100, metrics: ModelMetrics?) {
        self.capacity = max(1, capacity)
        self.minimum = max(1, min(minimum, capacity))
        self.metrics = metrics
    }

    /// Counts one message `version` scored.
    func observe(model: String, version: String, reference: DriftReference?, _ observation: Observation) {
        guard let reference else { return }
        let gauges: [Feature: Double]? = windows.withLockedValue { windows in
            var window = windows[version] ?? Window(model: model, reference: reference)
            window.add(observation, capacity: capacity)
            window.sinceGauges += 1
            var due: [Feature: Double]?
            if window.sinceGauges >= Self.gaugeEvery {
                window.sinceGauges = 0
                due = Self.psis(window, minimum: minimum)
            }
            windows[version] = window
            return due
        }
        if let gauges { publish(model: model, version: version, gauges) }
    }

    /// The drift of `version` on this node, or nil when it has scored nothing here.
    func report(for version: String) -> Report? {
        guard let window = windows.withLockedValue({ $0[version] }) else { return nil }
        let psis = Self.psis(window, minimum: minimum)
        publish(model: window.model, version: version, psis)
        return Report(
            version: version, window: window.ring.count, capacity: capacity, minimum: minimum, threshold: Self.alertThreshold,
            alert: psis.values.contains { $0 >= Self.alertThreshold },
            features: Feature.allCases.map { feature in
                let current = window.counts[feature]!
                let total = current.reduce(0, +)
                return .init(feature: feature.rawValue, psi: psis[feature], reference: feature.bins(of: window.reference),
                             current: current.map { total > 0 ? $0 / total : 0 }, labels: feature.labels)
            })
    }

    /// Forgets the windows of versions no longer served.
    func retain(_ versions: Set<String>) {
        windows.withLockedValue { windows in windows = windows.filter { versions.contains($0.key) } }
    }

    private static func psis(_ window: Window, minimum: Int) -> [Feature: Double] {
        var psis: [Feature: Double] = [:]
        for feature in Feature.allCases { psis[feature] = window.psi(feature, minimum: minimum) }
        return psis
    }

    private func publish(model: String, version: String, _ psis: [Feature: Double]) {
        for (feature, psi) in psis { metrics?.setDrift(model: model, version: version, feature: feature.rawValue, psi: psi) }
    }
}
