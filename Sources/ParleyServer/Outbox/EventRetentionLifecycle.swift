import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// Runs `EventRetention.prune` at start-up and then every `interval` while the server runs.
struct EventRetentionLifecycle: LifecycleHandler {
    let retention: EventRetention
    let interval: Duration
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(retention: EventRetention, interval: Duration) {
        self.retention = retention
        self.interval = interval
    }

    func didBootAsync(_ application: Application) async throws {
        let retention = self.retention, interval = self.interval
        let databases = application.databases, logger = application.logger, eventLoops = application.eventLoopGroup
        task.withLockedValue {
            $0 = Task {
                while !Task.isCancelled {
                    do {
                        if let db = databases.database(logger: logger, on: eventLoops.any()) {
                            let deleted = try await retention.prune(on: db)
                            if deleted > 0 { logger.info("pruned old events", metadata: ["deleted": .stringConvertible(deleted)]) }
                        }
                    } catch {
                        // Before the first migration the tables do not exist yet; try again later.
                        logger.debug("event pruning skipped", metadata: ["error": .string(String(describing: error))])
                    }
                    try? await Task.sleep(for: interval)
                }
            }
        }
    }

    func shutdownAsync(_ application: Application) async {
        let running = task.withLockedValue { $0 }
        running?.cancel()
        await running?.value
    }
}
