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

        /// A score or share that is not a number (a damaged model) counts in the lowest bin.
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

    /// A version's window: a ring of its latest observations and each feature's bin counts,
    /// kept as observations come and go. Touched only under the monitor's lock, in place.
    private final class Window: @unchecked Sendable {
        let model: String
        let reference: DriftReference
        var ring: [Observation] = []
        var next = 0
        var scores: [Double]
        var lengths: [Double]
        var unknownShares: [Double]
        var sinceGauges = 0

        init(model: String, reference: DriftReference) {
            self.model = model
            self.reference = reference
            scores = [Double](repeating: 0, count: reference.scores.count)
            lengths = [Double](repeating: 0, count: reference.lengths.count)
            unknownShares = [Double](repeating: 0, count: reference.unknownShares.count)
        }

        func add(_ observation: Observation, capacity: Int) {
            if ring.count < capacity {
                ring.append(observation)
            } else {
                move(ring[next], by: -1)
                ring[next] = observation
                next = (next + 1) % capacity
            }
            move(observation, by: 1)
        }

        private func move(_ observation: Observation, by delta: Double) {
            scores[Int(observation.score)] += delta
            lengths[Int(observation.length)] += delta
            unknownShares[Int(observation.unknownShare)] += delta
        }

        func counts(_ feature: Feature) -> [Double] {
            switch feature {
            case .score: scores
            case .length: lengths
            case .unknownShare: unknownShares
            }
        }

        func psi(_ feature: Feature, minimum: Int) -> Double? {
            guard ring.count >= minimum else { return nil }
            return try? DriftStatistics.populationStabilityIndex(referenceCounts: feature.bins(of: reference), currentCounts: counts(feature))
        }
    }

    let capacity: Int
    let minimum: Int
    private let metrics: ModelMetrics?
    /// The windows by version label, and the labels served now (nil until the first
    /// `retain`: every version is watched).
    private let state = NIOLockedValueBox<(windows: [String: Window], served: Set<String>?)>(([:], nil))
    /// Gauges are set every this many observations (and on every report).
    private static let gaugeEvery = 50

    init(capacity: Int = 1000, minimum: Int = 100, metrics: ModelMetrics?) {
        self.capacity = max(1, capacity)
        self.minimum = max(1, min(minimum, capacity))
        self.metrics = metrics
    }

    /// Counts one message `version` scored. A reference of another shape than the bins this
    /// build uses (a report from another version of Parley) is not compared against.
    func observe(model: String, version: String, reference: DriftReference?, _ observation: Observation) {
        guard let reference, reference.fits else { return }
        let gauges: [Feature: Double]? = state.withLockedValue { state in
            // A message scored just before its version stopped serving does not bring its window back.
            if let served = state.served, !served.contains(version) { return nil }
            let window: Window
            if let known = state.windows[version] {
                window = known
            } else {
                window = Window(model: model, reference: reference)
                state.windows[version] = window
            }
            window.add(observation, capacity: capacity)
            window.sinceGauges += 1
            guard window.sinceGauges >= Self.gaugeEvery else { return nil }
            window.sinceGauges = 0
            return Self.psis(window, minimum: minimum)
        }
        if let gauges { publish(model: model, version: version, gauges) }
    }

    /// The drift of `version` on this node, or nil when it has scored nothing here.
    func report(for version: String) -> Report? {
        let snapshot: (model: String, reference: DriftReference, window: Int, counts: [Feature: [Double]], psis: [Feature: Double])? =
            state.withLockedValue { state in
                guard let window = state.windows[version] else { return nil }
                return (window.model, window.reference, window.ring.count,
                        Dictionary(uniqueKeysWithValues: Feature.allCases.map { ($0, window.counts($0)) }), Self.psis(window, minimum: minimum))
            }
        guard let snapshot else { return nil }
        publish(model: snapshot.model, version: version, snapshot.psis)
        return Report(
            version: version, window: snapshot.window, capacity: capacity, minimum: minimum, threshold: Self.alertThreshold,
            alert: snapshot.psis.values.contains { $0 >= Self.alertThreshold },
            features: Feature.allCases.map { feature in
                let current = snapshot.counts[feature] ?? []
                let total = current.reduce(0, +)
                return .init(feature: feature.rawValue, psi: snapshot.psis[feature], reference: feature.bins(of: snapshot.reference),
                             current: current.map { total > 0 ? $0 / total : 0 }, labels: feature.labels)
            })
    }

    /// Watches only `versions` from now on: the others' windows and gauges go (a version
    /// that serves again starts a new window).
    func retain(_ versions: Set<String>) {
        let dropped: [(model: String, version: String)] = state.withLockedValue { state in
            state.served = versions
            let gone = state.windows.filter { !versions.contains($0.key) }
            for version in gone.keys { state.windows[version] = nil }
            return gone.map { ($0.value.model, $0.key) }
        }
        for (model, version) in dropped { metrics?.removeDrift(model: model, version: version) }
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
