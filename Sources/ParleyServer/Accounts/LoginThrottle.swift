import Foundation

/// Slows, then refuses, repeated failed sign-ins, without handing an attacker a way to lock
/// someone else out.
///
/// Failures are counted over a sliding window under three kinds of key, made by `keys(…)`:
///
/// - **account and address** (`pair:`): after `blockAfter` failures that address is refused
///   for that account with 429 and a `Retry-After`, until its oldest counted failure leaves the
///   window. Guessing one account's password from one place stops there; the account's owner
///   signing in from anywhere else is not refused.
/// - **account** (`handle:`): after `slowAfter` failures from anywhere, each further attempt
///   waits a delay that doubles up to `maxDelay`. Never a refusal, so nobody can lock an
///   account by failing on purpose.
/// - **address** (`address:`): the same delays at five times the thresholds (many people can
///   share an address behind NAT or an office proxy). Never a refusal either, so failures
///   spread over other accounts do not lock out everyone behind that address.
///
/// A success clears the account's and the pair's failures. State is per node.
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

    /// The keys a sign-in attempt is counted under (an unknown address counts as one address).
    static func keys(handle: String, address: String?) -> [String] {
        let handle = handle.lowercased()
        return ["pair:\(handle)|\(address ?? "-")", "handle:\(handle)"] + (address.map { ["address:\($0)"] } ?? [])
    }

    /// The decision for an attempt under all the given keys (the strictest applies).
    func check(_ keys: [String]) -> Decision {
        let now = clock.now()
        var delay = Duration.zero
        var retryAfter = 0
        for key in keys {
            let recent = prune(key, now: now)
            if key.hasPrefix("pair:") {
                if recent.count >= policy.blockAfter, let oldest = recent.first {
                    let window = TimeInterval(policy.window.components.seconds)
                    retryAfter = max(retryAfter, max(1, Int((oldest.addingTimeInterval(window).timeIntervalSince(now)).rounded(.up))))
                }
                continue
            }
            // Many people can share one address (NAT, offices), so an address gets more room.
            let threshold = policy.slowAfter * (key.hasPrefix("address:") ? Self.addressScale : 1)
            if recent.count >= threshold {
                let exponent = min(recent.count - threshold, 16)
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
        for key in keys where key.hasPrefix("handle:") || key.hasPrefix("pair:") {
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
