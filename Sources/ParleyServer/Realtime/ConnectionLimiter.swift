import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// Counts each user's open event connections on this node and refuses more than the cap.
final class ConnectionLimiter: Sendable {
    static let tooMany = ProblemError(.tooManyRequests, slug: "too-many-connections",
                                      detail: "Too many open event connections; close one first.",
                                      headers: ["Retry-After": "5"])

    let limit: Int
    private let counts = NIOLockedValueBox<[UUID: Int]>([:])

    init(limit: Int) {
        self.limit = limit
    }

    func hasRoom(for userID: UUID) -> Bool {
        counts.withLockedValue { ($0[userID] ?? 0) < limit }
    }

    /// Takes a slot, or nil when the user is at the cap.
    func open(for userID: UUID) -> Slot? {
        let taken = counts.withLockedValue { counts -> Bool in
            guard (counts[userID] ?? 0) < limit else { return false }
            counts[userID, default: 0] += 1
            return true
        }
        return taken ? Slot(limiter: self, userID: userID) : nil
    }

    fileprivate func release(_ userID: UUID) {
        counts.withLockedValue { counts in
            let left = (counts[userID] ?? 1) - 1
            counts[userID] = left > 0 ? left : nil
        }
    }

    /// One open connection; closing it twice releases once.
    final class Slot: Sendable {
        private let limiter: ConnectionLimiter
        private let userID: UUID
        private let closed = NIOLockedValueBox(false)

        fileprivate init(limiter: ConnectionLimiter, userID: UUID) {
            self.limiter = limiter
            self.userID = userID
        }

        func close() {
            let first = closed.withLockedValue { closed -> Bool in
                defer { closed = true }
                return !closed
            }
            if first { limiter.release(userID) }
        }
    }
}
