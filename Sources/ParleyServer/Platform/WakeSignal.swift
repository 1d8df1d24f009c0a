import Fluent
import Foundation
import NIOConcurrencyHelpers
import Vapor

/// A wake-up call that is kept until someone waits for it. (Hand-written: an `AsyncStream`
/// ends for good when a task waiting on it is cancelled, which the poll timeout does.)
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Numbers the waiters (a counter: Foundation's `UUID()` reads /dev/urandom each time,
        /// and the log's followers and the job worker wait after every commit).
        var lastWaiter = 0
    }

    private let state = NIOLockedValueBox(State())

    func signal() {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            guard !state.waiters.isEmpty else {
                state.pending = true
                return []
            }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when signalled (at once if a signal is pending) or when the task is cancelled.
    func wait() async {
        let id = state.withLockedValue { state -> Int in
            state.lastWaiter += 1
            return state.lastWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { state -> Bool in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    if Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
