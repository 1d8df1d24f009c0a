import Fluent
import NIOConcurrencyHelpers
import Vapor

/// Runs `Maintenance` at start-up and then every `interval` while the server runs.
struct MaintenanceLifecycle: LifecycleHandler {
    let maintenance: Maintenance
    let interval: Duration
    private let task = NIOLockedValueBox<_Concurrency.Task<Void, Never>?>(nil)

    init(maintenance: Maintenance, interval: Duration) {
        self.maintenance = maintenance
        self.interval = interval
    }

    func didBootAsync(_ application: Application) async throws {
        let maintenance = self.maintenance, interval = self.interval
        let databases = application.databases, logger = application.logger, eventLoops = application.eventLoopGroup
        task.withLockedValue {
            $0 = _Concurrency.Task {
                while !_Concurrency.Task.isCancelled {
                    if let db = databases.database(logger: logger, on: eventLoops.any()) {
                        await maintenance.run(on: db, logger: logger)
                    }
                    try? await _Concurrency.Task.sleep(for: interval)
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
