import Foundation
import NIOConcurrencyHelpers

/// One model turn's text on its way to the members as `assistant.delta` frames.
///
/// The first piece goes out at once. After a frame, the next one waits until `interval` has
/// passed since it, and carries every piece that arrived meanwhile; `flush` sends what is
/// left without waiting. So members see text appear at most about fifty times a second (a
/// display does not show more), a model that streams slower than that (most) gets a frame
/// per token, and a fast one (a cache, a small local model, the benchmark's scripted model)
/// does not cost a frame, an event-hub pass and a socket write per word. `index` counts
/// frames within the turn. Hand-written: nothing in the listed packages throttles an async
/// stream this way.
final class DeltaStream: Sendable {
    /// The least time between two frames of one turn, unless flushed.
    static let defaultInterval: Duration = .milliseconds(20)

    private struct State {
        var pending = ""
        var index = 0
        /// The task sending frames (and waiting out the interval between them), while one runs.
        var sending: Task<Void, Never>?
        var lastSent: ContinuousClock.Instant?
        /// Set by `flush`: send what is pending at once, from now on.
        var flushing = false
        /// The wait between frames in progress, and which one it is (a timer that fires
        /// after `flush` ended its wait must not end a later one).
        var pause: (id: Int, continuation: CheckedContinuation<Void, Never>)?
        var pauses = 0
    }

    private let state = NIOLockedValueBox(State())
    private let interval: Duration
    private let send: @Sendable (_ index: Int, _ text: String) async -> Void

    init(interval: Duration = DeltaStream.defaultInterval, send: @escaping @Sendable (_ index: Int, _ text: String) async -> Void) {
        self.interval = interval
        self.send = send
    }

    /// Queues a piece; never waits for the network.
    func write(_ piece: String) {
        guard !piece.isEmpty else { return }
        state.withLockedValue { state in
            state.pending += piece
            guard state.sending == nil else { return }
            state.sending = Task { await self.drain() }
        }
    }

    /// Sends what is pending now and waits until everything written has been sent (call
    /// before the reply is posted, so the last delta reaches members before the message).
    func flush() async {
        let pause = state.withLockedValue { state in
            state.flushing = true
            defer { state.pause = nil }
            return state.pause?.continuation
        }
        pause?.resume()
        while let task = state.withLockedValue({ $0.sending }) {
            await task.value
        }
    }

    private func drain() async {
        let clock = ContinuousClock()
        while true {
            let wait: Duration? = state.withLockedValue { state in
                guard !state.flushing, let last = state.lastSent else { return nil }
                let due = last + interval
                return due > clock.now ? due - clock.now : nil
            }
            if let wait { await pause(wait) }
            let next = state.withLockedValue { state -> (Int, String)? in
                guard !state.pending.isEmpty else {
                    state.sending = nil
                    return nil
                }
                defer {
                    state.pending = ""
                    state.index += 1
                }
                return (state.index, state.pending)
            }
            guard let (index, text) = next else { return }
            await send(index, text)
            state.withLockedValue { $0.lastSent = clock.now }
        }
    }

    /// Waits `duration`, or until `flush` ends the wait.
    private func pause(_ duration: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let id: Int? = state.withLockedValue { state in
                if state.flushing { return nil }
                state.pauses += 1
                state.pause = (state.pauses, continuation)
                return state.pauses
            }
            guard let id else {
                continuation.resume()
                return
            }
            Task {
                try? await LoopTimer.sleep(for: duration)
                let due = self.state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                    guard let pause = state.pause, pause.id == id else { return nil }
                    state.pause = nil
                    return pause.continuation
                }
                due?.resume()
            }
        }
    }
}
