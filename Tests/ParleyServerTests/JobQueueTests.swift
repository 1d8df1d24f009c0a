import Foundation
import NIOConcurrencyHelpers
import Prometheus
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

/// The durable job queue, at the service level, on SQLite and (in CI) PostgreSQL.
@Suite("Job queue")
struct JobQueueTests {
    static func queue(_ app: Application, _ context: TestContext, node: String, lease: Duration = .seconds(30)) -> JobQueue {
        var queue = JobQueue(gate: app.storage[WriteGateKey.self], clock: context.clock.appClock, node: node)
        queue.lease = lease
        queue.backoff = .init(base: .seconds(10), max: .seconds(60), jitter: false)
        return queue
    }

    static func job(_ app: Application, _ id: UUID) async throws -> Job {
        try #require(try await Job.find(id, on: app.db))
    }

    @Test("a job enqueued in a transaction exists only if it commits, and once per dedupe key")
    func enqueueInTransaction() async throws {
        try await withParley { app, context in
            struct Boom: Error {}
            let gate = app.storage[WriteGateKey.self]
            let now = context.clock.now
            await #expect(throws: Boom.self) {
                try await app.db.writeTransaction(gate) { _, outbox in
                    try await JobQueue.enqueue(.init(queue: "mail", payload: "{}"), at: now, in: outbox)
                    throw Boom()
                }
            }
            #expect(try await Job.query(on: app.db).count() == 0)

            let first = try await app.db.writeTransaction(gate) { _, outbox in
                try await JobQueue.enqueue(.init(queue: "mail", payload: #"{"to":"ann"}"#, dedupeKey: "welcome:ann"), at: now, in: outbox)
            }
            let again = try await app.db.writeTransaction(gate) { _, outbox in
                try await JobQueue.enqueue(.init(queue: "mail", payload: #"{"to":"ann"}"#, dedupeKey: "welcome:ann"), at: now, in: outbox)
            }
            #expect(first != nil)
            #expect(again == nil)
            let jobs = try await Job.query(on: app.db).all()
            #expect(jobs.map(\.id) == [first])
            #expect(jobs.first?.state == .queued)
            #expect(jobs.first?.payload == #"{"to":"ann"}"#)
        }
    }

    @Test("a job without a queue name or attempts is refused")
    func badJob() async throws {
        try await withParley { app, context in
            await #expect(throws: JobQueueError.invalidJob) {
                try await JobQueue.enqueue(.init(queue: "", payload: "{}"), at: context.clock.now, on: app.db)
            }
            await #expect(throws: JobQueueError.invalidJob) {
                try await JobQueue.enqueue(.init(queue: "mail", payload: "{}", maxAttempts: 0), at: context.clock.now, on: app.db)
            }
        }
    }

    @Test("a job is not claimed before its run_at, nor from another queue")
    func runAtAndQueues() async throws {
        try await withParley { app, context in
            let queue = Self.queue(app, context, node: "a")
            try await JobQueue.enqueue(.init(queue: "mail", payload: "{}", runAt: context.clock.now.addingTimeInterval(60)),
                                       at: context.clock.now, on: app.db)
            try await JobQueue.enqueue(.init(queue: "other", payload: "{}"), at: context.clock.now, on: app.db)
            #expect(try await queue.claim(queues: ["mail"], limit: 5, on: app.db).isEmpty)
            context.clock.advance(by: 61)
            let claimed = try await queue.claim(queues: ["mail"], limit: 5, on: app.db)
            #expect(claimed.map(\.queue) == ["mail"])
            #expect(claimed.first?.attempt == 1)
        }
    }

    @Test("a claim holds the job for its lease; once the lease runs out another node takes it over, and the first can neither renew nor finish it")
    func leaseTakeover() async throws {
        try await withParley { app, context in
            let a = Self.queue(app, context, node: "a"), b = Self.queue(app, context, node: "b")
            let id = try #require(try await JobQueue.enqueue(.init(queue: "mail", payload: "{}"), at: context.clock.now, on: app.db))
            let held = try #require(try await a.claim(queues: ["mail"], limit: 1, on: app.db).first)
            #expect(held.id == id)
            #expect(try await b.claim(queues: ["mail"], limit: 1, on: app.db).isEmpty)

            context.clock.advance(by: 31)
            let taken = try #require(try await b.claim(queues: ["mail"], limit: 1, on: app.db).first)
            #expect(taken.id == id)
            #expect(taken.attempt == 2)
            #expect(try await a.renew(held, on: app.db) == false)
            #expect(try await a.succeed(held, on: app.db) == false)
            #expect(try await a.fail(held, error: "late", on: app.db) == nil)
            #expect(try await Self.job(app, id).lockedBy == "b")

            #expect(try await b.succeed(taken, on: app.db))
            let done = try await Self.job(app, id)
            #expect(done.state == .succeeded)
            #expect(done.finishedAt == context.clock.now)
        }
    }

    @Test("a renewed lease is not taken over")
    func renewedLeaseHolds() async throws {
        try await withParley { app, context in
            let a = Self.queue(app, context, node: "a"), b = Self.queue(app, context, node: "b")
            try await JobQueue.enqueue(.init(queue: "mail", payload: "{}"), at: context.clock.now, on: app.db)
            let held = try #require(try await a.claim(queues: ["mail"], limit: 1, on: app.db).first)
            context.clock.advance(by: 20)
            #expect(try await a.renew(held, on: app.db))
            // Past the first lease's end, within the renewed one.
            context.clock.advance(by: 20)
            #expect(try await b.claim(queues: ["mail"], limit: 1, on: app.db).isEmpty)
            #expect(try await a.succeed(held, on: app.db))
        }
    }

    @Test("a failed job is retried after its back-off; the last failure, or a permanent one, dead-letters it with its error")
    func retriesAndDeadLetters() async throws {
        try await withParley { app, context in
            let queue = Self.queue(app, context, node: "a")
            let id = try #require(try await JobQueue.enqueue(.init(queue: "mail", payload: "{}", maxAttempts: 2),
                                                              at: context.clock.now, on: app.db))
            let first = try #require(try await queue.claim(queues: ["mail"], limit: 1, on: app.db).first)
            #expect(try await queue.fail(first, error: "smtp refused", on: app.db) == .queued)
            let waiting = try await Self.job(app, id)
            #expect(waiting.state == .queued)
            #expect(waiting.runAt == context.clock.now.addingTimeInterval(10))
            #expect(waiting.lastError == "smtp refused")
            #expect(try await queue.claim(queues: ["mail"], limit: 1, on: app.db).isEmpty)

            context.clock.advance(by: 10)
            let second = try #require(try await queue.claim(queues: ["mail"], limit: 1, on: app.db).first)
            #expect(second.attempt == 2)
            #expect(try await queue.fail(second, error: "smtp refused again", on: app.db) == .dead)
            let dead = try await Self.job(app, id)
            #expect(dead.state == .dead)
            #expect(dead.lastError == "smtp refused again")
            context.clock.advance(by: 3600)
            #expect(try await queue.claim(queues: ["mail"], limit: 1, on: app.db).isEmpty)

            let other = try #require(try await JobQueue.enqueue(.init(queue: "mail", payload: "{}"), at: context.clock.now, on: app.db))
            let claimed = try #require(try await queue.claim(queues: ["mail"], limit: 1, on: app.db).first)
            #expect(try await queue.fail(claimed, error: "bad address", permanent: true, on: app.db) == .dead)
            #expect(try await Self.job(app, other).state == .dead)
        }
    }

    @Test("a job whose lease runs out on its last attempt is dead-lettered, not run again")
    func expiredLastAttempt() async throws {
        try await withParley { app, context in
            let queue = Self.queue(app, context, node: "a")
            let id = try #require(try await JobQueue.enqueue(.init(queue: "mail", payload: "{}", maxAttempts: 1),
                                                              at: context.clock.now, on: app.db))
            _ = try await queue.claim(queues: ["mail"], limit: 1, on: app.db)
            context.clock.advance(by: 31)
            #expect(try await queue.claim(queues: ["mail"], limit: 1, on: app.db).isEmpty)
            let job = try await Self.job(app, id)
            #expect(job.state == .dead)
            #expect(job.lastError == "the lease ran out on its last attempt")
        }
    }

    @Test("two nodes claiming from one queue at once never claim the same job")
    func concurrentClaims() async throws {
        try await withParley { app, context in
            let total = 60
            for n in 0..<total {
                try await JobQueue.enqueue(.init(queue: "mail", payload: #"{"n":\#(n)}"#), at: context.clock.now, on: app.db)
            }
            let nodes = [Self.queue(app, context, node: "a"), Self.queue(app, context, node: "b")]
            let claimed = try await withThrowingTaskGroup(of: [UUID].self) { group in
                for node in nodes {
                    group.addTask {
                        var mine: [UUID] = []
                        while true {
                            let jobs = try await node.claim(queues: ["mail"], limit: 3, on: app.db)
                            if jobs.isEmpty { return mine }
                            mine += jobs.map(\.id)
                        }
                    }
                }
                return try await group.reduce(into: [[UUID]]()) { $0.append($1) }
            }
            let all = claimed.flatMap { $0 }
            #expect(all.count == total)
            #expect(Set(all).count == total)
        }
    }

    @Test("two workers run every job exactly once, woken by the commit that enqueued it")
    func workersRunEachJobOnce() async throws {
        try await withParley { app, context in
            let total = 40
            let runs = NIOLockedValueBox<[Int: Int]>([:])
            let (done, finished) = AsyncStream<Void>.makeStream()
            var options = JobWorker.Options()
            options.concurrency = 3
            options.pollInterval = .seconds(60)
            let workers = ["a", "b"].map { node in
                JobWorker(queue: Self.queue(app, context, node: node), options: options, database: { app.db }, metrics: nil,
                          logger: app.logger)
            }
            struct Payload: Codable { let n: Int }
            for worker in workers {
                worker.register("mail") { job in
                    let n = try job.decode(Payload.self).n
                    let count = runs.withLockedValue { runs in
                        runs[n, default: 0] += 1
                        return runs.values.reduce(0, +)
                    }
                    if count == total { finished.finish() }
                }
            }
            let gate = app.storage[WriteGateKey.self]
            gate?.onCommit { commit in
                if commit.enqueuedJobs { workers.forEach { $0.wake() } }
            }
            for worker in workers { worker.start() }
            let now = context.clock.now
            try await app.db.writeTransaction(gate) { _, outbox in
                for n in 0..<total {
                    try await JobQueue.enqueue(try .init(queue: "mail", payload: Payload(n: n)), at: now, in: outbox)
                }
            }
            for await _ in done {}
            for worker in workers { await worker.stop() }
            let counts = runs.withLockedValue { $0 }
            #expect(counts.count == total)
            #expect(counts.values.allSatisfy { $0 == 1 }, "\(counts.filter { $0.value != 1 })")
            let states = try await Job.query(on: app.db).all().map(\.state)
            #expect(states.allSatisfy { $0 == .succeeded })
        }
    }

    @Test("a job enqueued already claimed runs when its transaction commits, with no claim; a rolled-back one gives its slot back; a handler may finish its job in its own transaction",
          .timeLimit(.minutes(1)))
    func handOff() async throws {
        try await withParley { app, context in
            struct Boom: Error {}
            var options = JobWorker.Options()
            options.concurrency = 1
            // No poll, no claim at start and no wake-up for plain enqueues: only a hand-off can
            // start the job (and the start's claim cannot hold the only slot when the test
            // reserves it).
            options.pollInterval = .seconds(3600)
            options.claimAtStart = false
            let worker = JobWorker(queue: Self.queue(app, context, node: "a"), options: options, database: { app.db }, metrics: nil,
                                   logger: app.logger)
            let gate = try #require(app.storage[WriteGateKey.self])
            gate.onCommit { worker.committed($0) }
            let (ran, ranOnce) = AsyncStream<JobQueue.ClaimedJob>.makeStream()
            let finishedAt = context.clock.now.addingTimeInterval(5)
            worker.register("mail") { job in
                // The handler records its result and finishes the job in one transaction.
                let held = try await app.db.writeTransaction(gate) { _, outbox in
                    try await JobQueue.succeed(job, at: finishedAt, in: outbox)
                }
                #expect(held)
                ranOnce.yield(job)
            }
            #expect(worker.reserveSlot(for: "mail") == nil, "a worker that is not running takes no hand-offs")
            worker.start()
            #expect(worker.reserveSlot(for: "other") == nil, "no handler for that queue")
            let now = context.clock.now

            // given a reserved slot whose transaction rolls back
            do {
                let slot = try #require(worker.reserveSlot(for: "mail"))
                #expect(worker.reserveSlot(for: "mail") == nil, "the only slot is taken")
                await #expect(throws: Boom.self) {
                    try await app.db.writeTransaction(gate) { _, outbox in
                        try await JobQueue.enqueue(.init(queue: "mail", payload: "{}"), at: now, in: outbox, runningIn: slot)
                        throw Boom()
                    }
                }
            }
            // then no job exists and the slot is free again
            #expect(try await Job.query(on: app.db).count() == 0)
            #expect(worker.busySlots == 0)

            // when a transaction enqueues a job in a reserved slot and commits
            let slot = try #require(worker.reserveSlot(for: "mail"))
            let claimed = try await app.db.writeTransaction(gate) { _, outbox in
                try await JobQueue.enqueue(.init(queue: "mail", payload: #"{"to":"ann"}"#), at: now, in: outbox, runningIn: slot)
            }
            // then the worker runs it at once, on its first attempt, as claimed by this node
            let job = try #require(await ran.first { _ in true })
            #expect(job.id == claimed?.id)
            #expect(job.attempt == 1)
            #expect(job.holder == "a")
            await worker.stop()
            let stored = try await Self.job(app, job.id)
            #expect(stored.state == .succeeded)
            #expect(stored.attempts == 1)
            #expect(stored.finishedAt == finishedAt)
            #expect(worker.busySlots == 0)
        }
    }

    @Test("maintenance deletes succeeded jobs older than the event window and keeps dead ones")
    func pruneSucceeded() async throws {
        try await withParley { app, context in
            let queue = Self.queue(app, context, node: "a")
            let done = try #require(try await JobQueue.enqueue(.init(queue: "mail", payload: "{}"), at: context.clock.now, on: app.db))
            try await JobQueue.enqueue(.init(queue: "mail", payload: "{}", maxAttempts: 1), at: context.clock.now, on: app.db)
            // A claim returns its jobs in no particular order.
            let claimed = try await queue.claim(queues: ["mail"], limit: 2, on: app.db)
            #expect(claimed.count == 2)
            for job in claimed {
                if job.id == done { try await queue.succeed(job, on: app.db) } else { try await queue.fail(job, error: "broken", on: app.db) }
            }
            let maintenance = try #require(app.storage[MaintenanceKey.self])
            #expect(await maintenance.run(on: app.db, logger: app.logger)["succeeded jobs"] == 0)
            context.clock.advance(by: TimeInterval(context.settings.eventRetention.components.seconds) + 1)
            #expect(await maintenance.run(on: app.db, logger: app.logger)["succeeded jobs"] == 1)
            #expect(try await Job.query(on: app.db).all().map(\.state) == [.dead])
        }
    }

    @Test("queue depth and the oldest due job's age are exported as metrics")
    func metrics() async throws {
        try await withParley { app, context in
            let registry = PrometheusCollectorRegistry()
            let metrics = JobMetrics(registry: registry)
            try await JobQueue.enqueue(.init(queue: "mail", payload: "{}"), at: context.clock.now, on: app.db)
            try await JobQueue.enqueue(.init(queue: "mail", payload: "{}"), at: context.clock.now, on: app.db)
            context.clock.advance(by: 42)
            await metrics.refresh(database: { app.db }, now: context.clock.now, logger: app.logger)
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            var text = String(decoding: buffer, as: UTF8.self)
            #expect(text.contains(#"parley_jobs{queue="mail",state="queued"} 2"#), "\(text)")
            #expect(text.contains(#"parley_jobs_oldest_due_age_seconds{queue="mail"} 42"#), "\(text)")

            let queue = Self.queue(app, context, node: "a")
            for job in try await queue.claim(queues: ["mail"], limit: 5, on: app.db) { try await queue.succeed(job, on: app.db) }
            await metrics.refresh(database: { app.db }, now: context.clock.now, logger: app.logger)
            buffer = []
            registry.emit(into: &buffer)
            text = String(decoding: buffer, as: UTF8.self)
            #expect(text.contains(#"parley_jobs{queue="mail",state="queued"} 0"#), "\(text)")
            #expect(text.contains(#"parley_jobs{queue="mail",state="succeeded"} 2"#), "\(text)")
            #expect(text.contains(#"parley_jobs_oldest_due_age_seconds{queue="mail"} 0"#), "\(text)")
        }
    }
}
