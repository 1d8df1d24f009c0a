import Foundation

/// The wall clock, and waiting on it, injectable so tests can move time (and with it every
/// timer that waits on this clock).
public struct AppClock: Sendable {
    public var now: @Sendable () -> Date
    /// Returns once `now()` has reached the date (at once if it has).
    public var sleepUntil: @Sendable (Date) async -> Void

    public init(now: @escaping @Sendable () -> Date, sleepUntil: (@Sendable (Date) async -> Void)? = nil) {
        self.now = now
        self.sleepUntil = sleepUntil ?? { deadline in
            let seconds = deadline.timeIntervalSince(now())
            if seconds > 0 { try? await Task.sleep(for: .seconds(seconds)) }
        }
    }

    public static let live = AppClock { Date() }

    /// Waits `duration` on this clock.
    public func sleep(for duration: Duration) async {
        let (seconds, attoseconds) = duration.components
        await sleepUntil(now().addingTimeInterval(TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18))
    }
}
