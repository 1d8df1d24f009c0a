import Foundation
import NIOConcurrencyHelpers

/// One model turn's text on its way to the members as `assistant.delta` frames.
///
/// The first piece goes out at once; pieces that arrive while a frame is being sent are
/// joined into the next frame. A model that streams slower than frames go out (every real
/// one) gets a frame per token; a fast one (a cache, the benchmark's scripted model) does not
/// cost a frame, an actor hop and a socket write per word. `index` counts frames within the
/// turn. Hand-written: nothing in the listed packages coalesces an async stream this way.
final class DeltaStream: Sendable {
    private struct State {
        var pending = ""
        var index = 0
        var sending: Task<Void, Never>?
    }

    private let state = NIOLockedValueBox(State())
    private let send: @Sendable (_ index: Int, _ text: String) async -> Void

    init(send: @escaping @Sendable (_ index: Int, _ text: String) async -> Void) {
        self.send = send
    }

    /// Queues a piece; never waits for the network.
    func write(_ piece: String) {
        state.withLockedValue { state in
            state.pending += piece
            guard state.sending == nil else { return }
            state.sending = Task { await self.drain() }
        }
    }

    /// Waits until everything written has been sent (call before the reply is posted, so the
    /// last delta reaches members before the message).
    func flush() async {
        while let task = state.withLockedValue({ $0.sending }) {
            await task.value
        }
    }

    private func drain() async {
        while true {
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
        }
    }
}
