import Fluent
import Foundation
import NIOConcurrencyHelpers
import Vapor

/// Runs this node's share of the job queue: claims ready jobs of the queues it has handlers
/// for (up to `concurrency` at a time), renews each lease while its handler runs (cancelling
/// the handler if the claim is lost), and records success, retry or dead letter. It looks for
/// work every `pollInterval`, and at once when this node commits a transaction that enqueued
/// a job, or a handler finishes while every slot was taken.
///
/// A transaction on this node can also enqueue a job already claimed for this worker (in a
/// slot it reserved, `reserveSlot`): the worker runs it as soon as the transaction commits,
/// with no claim transaction and no wait. A handler may finish its job in its own transaction
/// (`JobQueue.succeed(_:at:in:)`), which spares the worker recording it.
final class JobWorker: LifecycleHandler, Sendable {
    typealias Handler = @Sendable (JobQueue.ClaimedJob) async throws -> Void

    struct Options: Sendable {
        /// Jobs this node runs at once. Handlers mostly wait (on a model provider, a push
        /// service, a mail server; image work has its own one-thread pool), so a worker can hold
        /// many: an assistant run that finds no free slot is not started at once but queued, and
        /// pays for a claim, a read of its run and a status write of its own.
        var concurrency = 32
        var pollInterval: Duration = .seconds(1)
        /// How often queue depths and ages are read for the metrics.
        var metricsInterval: Duration = .seconds(15)
        /// Whether the worker looks for waiting jobs as soon as it starts, or only when woken,
        /// handed a job or polling.
        var claimAtStart = true
    }

    /// A place in the worker's concurrency held for one job that a transaction is enqueueing
    /// already claimed. It is given back when that transaction does not commit (when the slot
    /// is released unused), or when the job, handed off, finishes.
    final class Slot: Sendable {
        let queue: JobQueue
        fileprivate let worker: JobWorker
        private let used = NIOLockedValueBox(false)

        fileprivate init(queue: JobQueue, worker: JobWorker) {
            self.queue = queue
            self.worker = worker
        }

        /// Marks the slot as taken by a job; false when it already was.
        fileprivate func take() -> Bool {
            used.withLockedValue { used in
                defer { used = true }
                return !used
            }
        }

        /// Frees the slot unless a job took it (a rolled-back transaction's slot).
        func giveBack() {
            if take() { worker.release(1) }
        }

        deinit {
            giveBack()
        }
    }

    /// A job claimed at enqueue, with the slot it runs in.
    struct HandOff: Sendable {
        let job: JobQueue.ClaimedJob
        let slot: Slot
    }

    let queue: JobQueue
    let options: Options
    private let database: @Sendable () throws -> any Database
    private let metrics: JobMetrics?
    private let logger: Logger
    private let handlers = NIOLockedValueBox<[String: Handler]>([:])
    private let wakeUps = WakeSignal()
    private let loop = NIOLockedValueBox<Task<Void, Never>?>(nil)

    private struct State {
        /// Slots taken: jobs running, claims in flight, slots reserved for hand-offs.
        var busy = 0
        var running = false
        /// Jobs handed to this worker by a commit, while they run (see `committed`).
        var handedOff: [UUID: Task<Void, Never>] = [:]
        /// Whether the loop should claim when it next wakes: set by news of work (a commit that
        /// enqueued a job, the poll falling due, a claim that filled every free slot).
        var claimWanted = true
        /// Jobs whose handlers finished them in their own transactions.
        var settled: Set<UUID> = []
    }

    private let state = NIOLockedValueBox(State())

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
        state.withLockedValue { $0.claimWanted = true }
        wakeUps.signal()
    }

    /// A free slot for a job of `queueName` that a transaction is about to enqueue already
    /// claimed (`JobQueue.enqueue(_:at:in:runningIn:)`); nil when this worker is not running,
    /// has no handler for that queue, or has no free slot (enqueue the job plainly then).
    func reserveSlot(for queueName: String) -> Slot? {
        guard handlers.withLockedValue({ $0[queueName] != nil }) else { return nil }
        let granted = state.withLockedValue { state in
            guard state.running, state.busy < options.concurrency else { return false }
            state.busy += 1
            return true
        }
        return granted ? Slot(queue: queue, worker: self) : nil
    }

    /// What a committed transaction on this node means for the worker: jobs to look for,
    /// jobs handed to it, jobs its handlers finished.
    func committed(_ commit: Outbox.Commit) {
        if !commit.settledJobs.isEmpty {
            state.withLockedValue { $0.settled.formUnion(commit.settledJobs) }
        }
        let mine = commit.claimedJobs.filter { $0.slot.worker === self && $0.slot.take() }
        for handOff in mine { start(handOff.job) }
        if commit.enqueuedJobs { wake() }
    }

    /// Starts a job a commit handed over at once, without waiting for the worker's loop to
    /// wake, and on another event loop than the committing one: that one goes on to answer
    /// the request that committed and send its events, while the job runs beside it (the
    /// assistants benchmark's idle mention → first delta fell by about 0.3-0.5 ms). A stopped
    /// worker starts none: the job keeps its claim until its lease runs out.
    private func start(_ job: JobQueue.ClaimedJob) {
        guard let handler = handlers.withLockedValue({ $0[job.queue] }) else { return release(1) }
        ConcurrencyOnEventLoops.elsewhere { [self] in
            state.withLockedValue { state in
                guard state.running else {
                    state.busy -= 1
                    return
                }
                // Added under the lock, so the task cannot finish before it is recorded.
                state.handedOff[job.id] = Task {
                    await self.execute(job, handler)
                    let claimWanted = self.state.withLockedValue { state in
                        state.handedOff[job.id] = nil
                        state.busy -= 1
                        return state.claimWanted
                    }
                    if claimWanted { self.wakeUps.signal() }
                }
            }
        }
    }

    /// Slots taken now (running jobs, claims in flight, reservations).
    var busySlots: Int { state.withLockedValue { $0.busy } }

    fileprivate func release(_ count: Int) {
        guard count > 0 else { return }
        state.withLockedValue { $0.busy -= count }
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
            state.withLockedValue { state in
                state.running = true
                state.claimWanted = options.claimAtStart
            }
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
        state.withLockedValue { $0.running = false }
        task?.cancel()
        await task?.value
        // Jobs handed off run until cancelled too.
        let handedOff = state.withLockedValue { Array($0.handedOff.values) }
        for job in handedOff { job.cancel() }
        for job in handedOff { await job.value }
    }

    private func run() async {
        var nextMetrics = ContinuousClock.now
        var nextReap = ContinuousClock.now
        var nextPoll = ContinuousClock.now + options.pollInterval
        await withDiscardingTaskGroup { group in
            // Whether the last claim filled every free slot (more may be waiting). Only then does
            // a finished handler look again at once; otherwise new work announces itself (a
            // commit on this node) or is found by the poll (other nodes, retries falling due).
            let saturated = NIOLockedValueBox(false)
            func begin(_ job: JobQueue.ClaimedJob) {
                guard let handler = self.handlers.withLockedValue({ $0[job.queue] }) else {
                    self.release(1)
                    return
                }
                group.addTask {
                    await self.execute(job, handler)
                    self.release(1)
                    if saturated.withLockedValue({ $0 }) {
                        self.wake()
                    } else if self.state.withLockedValue({ $0.claimWanted }) {
                        self.wakeUps.signal()
                    }
                }
            }
            while !Task.isCancelled {
                let queues = handlers.withLockedValue { Array($0.keys) }.sorted()
                var claimedAll = false
                if ContinuousClock.now >= nextPoll {
                    nextPoll = ContinuousClock.now + options.pollInterval
                    state.withLockedValue { $0.claimWanted = true }
                }
                let free = state.withLockedValue { state in
                    let free = queues.isEmpty ? 0 : max(0, options.concurrency - state.busy)
                    // With no free slot the wish stays: the next handler to finish looks.
                    guard state.claimWanted, free > 0 else { return 0 }
                    state.claimWanted = false
                    state.busy += free
                    return free
                }
                if free > 0 {
                    do {
                        let reap = ContinuousClock.now >= nextReap
                        if reap { nextReap = ContinuousClock.now + options.pollInterval }
                        let jobs = try await queue.claim(queues: queues, limit: free, reap: reap, on: database())
                        release(free - jobs.count)
                        claimedAll = jobs.count == free
                        saturated.withLockedValue { $0 = claimedAll }
                        if claimedAll { state.withLockedValue { $0.claimWanted = true } }
                        for job in jobs { begin(job) }
                    } catch {
                        release(free)
                        state.withLockedValue { $0.claimWanted = true }
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
            group.addTask { try? await LoopTimer.sleep(for: interval) }
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
                    try? await LoopTimer.sleep(for: every)
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
        let settled = state.withLockedValue { $0.settled.remove(job.id) != nil }
        if lost.withLockedValue({ $0 }) {
            logger.warning("a job's lease was lost while it ran; another node has it",
                           metadata: ["job_id": .string(job.id.wire), "queue": .string(job.queue)])
            return
        }
        do {
            let db = try database()
            switch outcome {
            case .success:
                if !settled { try await queue.succeed(job, on: db) }
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
