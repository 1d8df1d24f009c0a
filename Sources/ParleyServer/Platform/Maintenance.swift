import Fluent
import NIOConcurrencyHelpers
import Vapor

/// Housekeeping a serving node runs at start-up and then every `interval`: each feature adds
/// its own task (old events, expired tickets, finished jobs), so none reaches into another's
/// tables to tidy them.
final class Maintenance: Sendable {
    /// Removes what is due and returns how many rows went.
    typealias Task = @Sendable (any Database) async throws -> Int

    private let tasks = NIOLockedValueBox<[(name: String, run: Task)]>([])

    func add(_ name: String, _ task: @escaping Task) {
        tasks.withLockedValue { $0.append((name, task)) }
    }

    /// Runs every task once; a failing one is logged and does not stop the others.
    @discardableResult
    func run(on db: any Database, logger: Logger) async -> [String: Int] {
        var removed: [String: Int] = [:]
        for task in tasks.withLockedValue({ $0 }) {
            do {
                let count = try await task.run(db)
                removed[task.name] = count
                if count > 0 { logger.info("maintenance removed rows", metadata: ["task": .string(task.name), "rows": .stringConvertible(count)]) }
            } catch {
                // Before the first migration the tables do not exist yet; the next round tries again.
                logger.debug("maintenance task skipped", metadata: ["task": .string(task.name), "error": .string(String(describing: error))])
            }
        }
        return removed
    }
}
