import Foundation
import NIOPosix
import Testing
@testable import ParleyServer

@Suite("Event-loop timer")
struct LoopTimerTests {
    @Test("a sleep returns once its time has passed")
    func sleeps() async throws {
        let start = ContinuousClock.now
        try await LoopTimer.sleep(for: .milliseconds(20))
        #expect(ContinuousClock.now - start >= .milliseconds(20))
    }

    @Test("a cancelled sleep throws CancellationError at once, whether cancelled while waiting or before", .timeLimit(.minutes(1)))
    func cancels() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let waiting = Task { try await LoopTimer.sleep(for: .seconds(3600), on: loop) }
        // One is cancelled after a round trip through the loop (so most likely while it waits
        // there), the other before it could start.
        try await loop.submit {}.get()
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await LoopTimer.sleep(for: .seconds(3600), on: loop)
        }
        await #expect(throws: CancellationError.self) { try await early.value }
    }
}
