import Crypto
import Foundation
import JWT

/// The wall clock, injectable so tests can move time.
public struct AppClock: Sendable {
    public var now: @Sendable () -> Date
    public init(now: @escaping @Sendable () -> Date) { self.now = now }
    public static let live = AppClock { Date() }
}
