import Fluent
import Foundation
import NIOConcurrencyHelpers
import Vapor

/// Runs this node's share of the job queue: claims ready jobs of the queues it has handlers
/// for (up to `concurrency` at a time), renews each lease while its handler runs (cancelling
/// the handler if the claim is lost), and records success, retry or dead letter. It looks for
/// work every `pollInterval`, and at once when this node commits a transaction that enqueued
/// a job, or a handler finishes while every slot was taken.
final class JobWorker: LifecycleHandler, Sendable {
    typealias Handler = @Sendable (JobQueue.ClaimedJob) async throws -> Void

    struct Options: Sendable {
        var concurrency = 4
        var pollInterval: Duration = .seconds(1)
        /// How often queue depths and ages are read for the metrics.
        var metricsInterval: Duration = .seconds(15)
    }

    let queue: JobQueue
    let options: Options
    private let database: @Sendable () throws -> any Database
    private let metrics: JobMetrics?
    private let logger: Logger
    private let handlers = NIOLockedValueBox<[String: Handler]>([:])
    private let wakeUps = WakeSignal()
    private let loop = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(queue: JobQueue, options: Options, database: @escaping @Sendable () throws -> any Database,
         metrics: JobMetrics?, logger: Logger) {
        self.queue = queue
        self.options = options
        self.database = database
        self.metrics = metrics
        self.logger = logger
    }

    /// Runs `handler` for every job of `queueName`. Register before the application boots.
    func register(_ queueName: String, _ handler: @escaping Handler) {
        handlers.withLockedValue { $0[queueName] = handler }
        wake()
    }

    /// Look for work now.
    func wake() {
        wakeUps.signal()
    }

    func didBootAsync(_ application: Application) async throws {
        start()
    }

    func shutdownAsync(_ application: Application) async {
        await stop()
    }

    func start() {
        loop.withLockedValue { loop in
            guard loop == nil else { return }
            loop = Task { await self.run() }
        }
    }

    /// Stops claiming, cancels running handlers (their jobs' leases run out and another
    /// node or the next start takes them) and waits for the loop to end.
    func stop() async {
        let task = loop.withLockedValue { loop -> Task<Void, Never>? in
            defer { loop = nil }
            return loop
        }
        task?.cancel()
        await task?.value
    }

    private func run() async {
        var nextMetrics = ContinuousClock.now
        await withDiscardingTaskGroup { group in
            var running = 0
            let finished = NIOLockedValueBox(0)
            // Whether the last claim filled every free slot (more may be waiting). Only then does
            // a finished handler look again at once; otherwise new work announces itself (a
            // commit on this node) or is found by the poll (other nodes, retries falling due).
            let saturated = NIOLockedValueBox(false)
            while !Task.isCancelled {
                running -= finished.withLockedValue { count in
                    defer { count = 0 }
                    return count
                }
                let queues = handlers.withLockedValue { Array($0.keys) }.sorted()
                var claimedAll = false
                if running < options.concurrency, !queues.isEmpty {
                    do {
                        let free = options.concurrency - running
                        let jobs = try await queue.claim(queues: queues, limit: free, on: database())
                        claimedAll = jobs.count == free
                        saturated.withLockedValue { $0 = claimedAll }
                        for job in jobs {
                            guard let handler = handlers.withLockedValue({ $0[job.queue] }) else { continue }
                            running += 1
                            group.addTask {
                                await self.execute(job, handler)
                                finished.withLockedValue { $0 += 1 }
                                if saturated.withLockedValue({ $0 }) { self.wake() }
                            }
                        }
                    } catch {
                        logger.warning("could not claim jobs", metadata: ["error": .string(String(describing: error))])
                    }
                }
                if let metrics, ContinuousClock.now >= nextMetrics {
                    nextMetrics = ContinuousClock.now + options.metricsInterval
                    await metrics.refresh(database: database, now: queue.clock.now(), logger: logger)
                }
                // More may be ready when every free slot was filled; otherwise wait for news.
                if !claimedAll { await waitForWork() }
            }
            group.cancelAll()
        }
    }

    /// Returns on a wake-up, after the poll interval, or on cancellation.
    private func waitForWork() async {
        let wakeUps = self.wakeUps, interval = options.pollInterval
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await wakeUps.wait() }
            group.addTask { try? await Task.sleep(for: interval) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Runs one claimed job under a renewed lease and records the outcome.
    private func execute(_ job: JobQueue.ClaimedJob, _ handler: @escaping Handler) async {
        let queue = self.queue, database = self.database, logger = self.logger
        var outcome: Result<Void, any Error> = .success(())
        let lost = NIOLockedValueBox(false)
        await withTaskGroup(of: Void.self) { group in
            let work = Task {
                do { try await handler(job) } catch { return Result<Void, any Error>.failure(error) }
                return .success(())
            }
            group.addTask {
                // Renew at a third of the lease, so two renewals may fail before it runs out.
                let every = queue.lease / 3
                while !Task.isCancelled {
                    try? await Task.sleep(for: every)
                    if Task.isCancelled { break }
                    let held = (try? await queue.renew(job, on: database())) ?? true
                    if !held {
                        lost.withLockedValue { $0 = true }
                        work.cancel()
                        break
                    }
                }
            }
            outcome = await withTaskCancellationHandler { await work.value } onCancel: { work.cancel() }
            group.cancelAll()
        }
        if lost.withLockedValue({ $0 }) {
            logger.warning("a job's lease was lost while it ran; another node has it",
                           metadata: ["job_id": .string(job.id.wire), "queue": .string(job.queue)])
            return
        }
        do {
            let db = try database()
            switch outcome {
            case .success:
                try await queue.succeed(job, on: db)
                metrics?.finished(queue: job.queue, outcome: "succeeded")
            case .failure(let error):
                let permanent = error is PermanentJobFailure
                let state = try await queue.fail(job, error: String(describing: error), permanent: permanent, on: db)
                metrics?.finished(queue: job.queue, outcome: state == .dead ? "dead" : "retried")
                logger.notice("a job failed", metadata: [
                    "job_id": .string(job.id.wire), "queue": .string(job.queue), "attempt": .stringConvertible(job.attempt),
                    "state": .string(state?.rawValue ?? "lost"),
                ])
            }
        } catch {
            logger.warning("could not record a job's outcome; its lease will run out and it will run again",
                           metadata: ["job_id": .string(job.id.wire), "error": .string(String(describing: error))])
        }
    }
}
