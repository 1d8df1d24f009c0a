import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// Sends heartbeats (and presence liveness beats) while the application runs, and ends every
/// stream on shutdown.
struct EventHubLifecycle: LifecycleHandler {
    let hub: EventHub
    let presence: Presence
    let heartbeat: Duration
    let clock: AppClock
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(hub: EventHub, presence: Presence, heartbeat: Duration, clock: AppClock) {
        self.hub = hub
        self.presence = presence
        self.heartbeat = heartbeat
        self.clock = clock
    }

    func didBootAsync(_ application: Application) async throws {
        // The hub starts with its first subscriber: every command boots the application,
        // `migrate` on a fresh database included, before the events table exists.
        let hub = self.hub, presence = self.presence, heartbeat = self.heartbeat, clock = self.clock
        task.withLockedValue {
            $0 = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: heartbeat)
                    await hub.broadcast(.heartbeat(at: clock.now()))
                    await presence.tick()
                }
            }
        }
    }

    func shutdownAsync(_ application: Application) async {
        task.withLockedValue { $0?.cancel() }
        await hub.finishAll()
    }
}
