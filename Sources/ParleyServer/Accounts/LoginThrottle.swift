import Foundation

/// Slows, then refuses, repeated failed sign-ins for one handle or one client address.
///
/// Failures are counted per key over a sliding window. After `slowAfter` failures each attempt
/// waits an exponentially growing delay; after `blockAfter` the key is refused with 429 and a
/// `Retry-After` until its oldest counted failure leaves the window. A client address gets five
/// times the handle's thresholds. State is per node.
actor LoginThrottle {
    enum Decision: Equatable {
        case allow(delay: Duration)
        case block(retryAfter: Int)
    }

    static let addressScale = 5
    private let policy: Settings.LoginThrottle
    private let clock: AppClock
    private var failures: [String: [Date]] = [:]

    init(policy: Settings.LoginThrottle, clock: AppClock) {
        self.policy = policy
        self.clock = clock
    }

    /// The decision for an attempt under all the given keys (the strictest applies).
    func check(_ keys: [String]) -> Decision {
        let now = clock.now()
        var delay = Duration.zero
        var retryAfter = 0
        for key in keys {
            let recent = prune(key, now: now)
            // Many people can share one address (NAT, offices), so an address gets more room.
            let scale = key.hasPrefix("address:") ? Self.addressScale : 1
            if recent.count >= policy.blockAfter * scale, let oldest = recent.first {
                let window = TimeInterval(policy.window.components.seconds)
                retryAfter = max(retryAfter, max(1, Int((oldest.addingTimeInterval(window).timeIntervalSince(now)).rounded(.up))))
            } else if recent.count >= policy.slowAfter * scale {
                let exponent = min(recent.count - policy.slowAfter * scale, 16)
                delay = max(delay, min(policy.baseDelay * (1 << exponent), policy.maxDelay))
            }
        }
        return retryAfter > 0 ? .block(retryAfter: retryAfter) : .allow(delay: delay)
    }

    func recordFailure(_ keys: [String]) {
        let now = clock.now()
        // Bound memory against a spray of distinct handles: drop expired keys now and then.
        if failures.count > 50_000 {
            for key in Array(failures.keys) { _ = prune(key, now: now) }
        }
        for key in keys {
            _ = prune(key, now: now)
            failures[key, default: []].append(now)
        }
    }

    func recordSuccess(_ keys: [String]) {
        for key in keys where key.hasPrefix("handle:") {
            failures[key] = nil
        }
    }

    private func prune(_ key: String, now: Date) -> [Date] {
        let cutoff = now.addingTimeInterval(-TimeInterval(policy.window.components.seconds))
        guard var list = failures[key] else { return [] }
        list.removeAll { $0 <= cutoff }
        failures[key] = list.isEmpty ? nil : list
        return list
    }
}
