import Foundation
import Logging
import NIOConcurrencyHelpers

/// The loop every follower of the event log runs: do a step until it says there is nothing
/// more, then wait until this node commits an event of the kinds it cares about (or the
/// domain events say some were missed), or for the poll interval (other nodes' commits).
/// A step that throws is logged and tried again after the wait. Each step is told whether
/// this round began with a wake-up from this node's commits (`woken`) rather than a poll,
/// the first round or a retry, which must read the log itself.
final class LogWatch: Sendable {
    private let tasks = NIOLockedValueBox<[Task<Void, Never>]>([])

    /// Starts watching; `step` returns whether it should run again at once.
    func start(_ name: String, domainEvents: DomainEvents, types: Set<EventType>, pollInterval: Duration, logger: Logger,
               step: @escaping @Sendable (_ woken: Bool) async throws -> Bool) {
        let deliveries = domainEvents.subscribe(name)
        let wakeUps = WakeSignal()
        let listener = Task {
            for await delivery in deliveries {
                switch delivery {
                case .event(let event) where types.contains(event.type): wakeUps.signal()
                case .missed: wakeUps.signal()
                default: continue
                }
            }
        }
        let loop = Task {
            var woken = false
            while !Task.isCancelled {
                do {
                    while try await step(woken) {}
                } catch {
                    logger.warning("a follower of the event log failed; retrying",
                                   metadata: ["follower": .string(name), "error": .string(String(describing: error))])
                }
                woken = await withTaskGroup(of: Bool.self) { group in
                    group.addTask { await wakeUps.wait(); return true }
                    group.addTask { try? await LoopTimer.sleep(for: pollInterval); return false }
                    let first = await group.next() ?? false
                    group.cancelAll()
                    return first
                }
            }
        }
        tasks.withLockedValue { $0 = [listener, loop] }
    }

    func stop() async {
        let tasks = self.tasks.withLockedValue { $0 }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}
