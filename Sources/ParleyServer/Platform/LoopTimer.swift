import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Sleeps on an event loop's timer, for the waits the server makes around every run and job
/// (lease renewals, cancellation checks, deadlines, the pause between delta frames).
///
/// `Task.sleep` is not used for these: with NIO as Swift's global executor, its timers still
/// go to libdispatch, and each of them, even once cancelled, later fires on dispatch's timer
/// thread and wakes one of dispatch's worker threads to learn there is nothing left to do.
/// Most of these waits are cancelled long before they are due, several per run; a cancelled
/// wait here is taken off the loop's timer heap and costs nothing more. Written by hand: no
/// package offers an async sleep on NIO's timers.
enum LoopTimer {
    /// Returns once `duration` has passed; throws `CancellationError` as soon as the task is
    /// cancelled.
    @Sendable
    static func sleep(for duration: Duration) async throws {
        try await sleep(for: duration, on: MultiThreadedEventLoopGroup.singleton.any())
    }

    static func sleep(for duration: Duration, on loop: any EventLoop) async throws {
        let state = NIOLockedValueBox<(scheduled: Scheduled<Void>?, cancelled: Bool)>((nil, false))
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let scheduled = loop.scheduleTask(in: TimeAmount(duration)) {}
                scheduled.futureResult.whenComplete { result in
                    switch result {
                    case .success: continuation.resume()
                    case .failure: continuation.resume(throwing: CancellationError())
                    }
                }
                let cancelled = state.withLockedValue { state in
                    state.scheduled = scheduled
                    return state.cancelled
                }
                if cancelled { scheduled.cancel() }
            }
        } onCancel: {
            state.withLockedValue { state in
                state.cancelled = true
                return state.scheduled
            }?.cancel()
        }
    }
}
