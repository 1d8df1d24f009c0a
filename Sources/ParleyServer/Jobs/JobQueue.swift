import Fluent
import Foundation
import SQLKit

/// The durable job queue, and the owner of the `jobs` table's SQL.
///
/// Work is enqueued inside the caller's transaction (it exists if and only if the change
/// commits), claimed by a worker for a lease, renewed while it runs, and finished by the
/// worker that holds the claim. A claim takes ready jobs with `FOR UPDATE SKIP LOCKED` on
/// PostgreSQL, so nodes never wait on or take each other's rows; on SQLite it runs through
/// the write gate, which makes it the only writer. A job whose lease runs out (its node died)
/// is claimed again by anyone; the attempt number is the fencing token, so the old holder
/// can neither renew nor finish it. Failures are retried with exponential back-off and
/// jitter; after `max_attempts`, or on a permanent failure, the job is dead-lettered.
struct JobQueue: Sendable {
    let gate: WriteGate?
    let clock: AppClock
    /// Who claims: this node's worker id.
    let node: String
    var lease: Duration = .seconds(30)
    var backoff = Backoff()

    /// Delay before retry `n` (1-based): `base · 2^(n-1)`, at most `max`, with "equal jitter"
    /// (a uniformly random half on top of a fixed half) so retries of many jobs spread out.
    struct Backoff: Sendable {
        var base: Duration = .seconds(1)
        var max: Duration = .seconds(300)
        var jitter = true

        func delay(afterAttempt attempt: Int) -> TimeInterval {
            let base = TimeInterval(self.base.components.seconds) + TimeInterval(self.base.components.attoseconds) / 1e18
            let cap = TimeInterval(self.max.components.seconds)
            let full = Swift.min(cap, base * pow(2, Double(Swift.max(0, attempt - 1))))
            return jitter ? full / 2 + Double.random(in: 0...(full / 2)) : full
        }
    }

    struct NewJob: Sendable {
        var queue: String
        /// The handler's input as JSON text.
        var payload: String
        /// At most one job ever exists per key; enqueueing it again does nothing.
        var dedupeKey: String?
        /// Not before this time (nil: now).
        var runAt: Date?
        var maxAttempts: Int = 5

        init(queue: String, payload: String, dedupeKey: String? = nil, runAt: Date? = nil, maxAttempts: Int = 5) {
            self.queue = queue
            self.payload = payload
            self.dedupeKey = dedupeKey
            self.runAt = runAt
            self.maxAttempts = maxAttempts
        }

        init(queue: String, payload: some Encodable, dedupeKey: String? = nil, runAt: Date? = nil, maxAttempts: Int = 5) throws {
            self.init(queue: queue, payload: String(decoding: try EventLog.encoder.encode(payload), as: UTF8.self),
                      dedupeKey: dedupeKey, runAt: runAt, maxAttempts: maxAttempts)
        }
    }

    /// A job this node holds. `attempt` is the claim's fencing token; `holder` is the node
    /// that claimed it.
    struct ClaimedJob: Sendable, Equatable {
        let id: UUID
        let queue: String
        let payload: String
        let attempt: Int
        let maxAttempts: Int
        let createdAt: Date
        let holder: String

        func decode<T: Decodable>(_: T.Type) throws -> T {
            try EventLog.decoder.decode(T.self, from: Data(payload.utf8))
        }
    }

    // MARK: Enqueueing (inside the caller's transaction)

    /// Adds a job in the transaction of `outbox`, so it exists exactly when the change
    /// commits, and tells this node's workers to look once it has. Returns the job's id, or nil
    /// when a job with the same dedupe key already exists.
    @discardableResult
    static func enqueue(_ job: NewJob, at now: Date, in outbox: Outbox) async throws -> UUID? {
        let id = try await enqueue(job, at: now, on: outbox.db)
        if id != nil { outbox.noteJobEnqueued() }
        return id
    }

    /// Adds a job in the transaction of `outbox` already claimed by this node's worker, which
    /// runs it as soon as the transaction commits: no claim transaction, no wait for the worker
    /// to look. `slot` is a place the worker reserved for it; when the transaction rolls back
    /// the slot is given back and no job exists. Returns nil when a job with the same dedupe
    /// key already exists (and that one runs however it was going to).
    @discardableResult
    static func enqueue(_ job: NewJob, at now: Date, in outbox: Outbox, runningIn slot: JobWorker.Slot) async throws -> ClaimedJob? {
        guard let sql = outbox.db as? any SQLDatabase else { throw StorageError.notSQL }
        guard !job.queue.isEmpty, job.maxAttempts >= 1 else { throw JobQueueError.invalidJob }
        let queue = slot.queue
        struct Row: Decodable { let id: UUID }
        let id = UUID.timeOrdered()
        guard try await sql.raw("""
            INSERT INTO jobs (id, queue, payload, state, dedupe_key, attempts, max_attempts, run_at, created_at, locked_by, lease_expires_at)
            VALUES (\(bind: id), \(bind: job.queue), \(bind: job.payload), \(bind: Job.State.running.rawValue), \(bind: job.dedupeKey),
                    1, \(bind: job.maxAttempts), \(bind: job.runAt ?? now), \(bind: now), \(bind: queue.node),
                    \(bind: now.addingTimeInterval(seconds(queue.lease))))
            ON CONFLICT DO NOTHING RETURNING id
            """).first(decoding: Row.self) != nil
        else { return nil }
        let claimed = ClaimedJob(id: id, queue: job.queue, payload: job.payload, attempt: 1, maxAttempts: job.maxAttempts,
                                 createdAt: now, holder: queue.node)
        outbox.noteJobClaimed(claimed, slot: slot)
        return claimed
    }

    /// Adds a job on `db` (a transaction of the caller's, or on its own).
    @discardableResult
    static func enqueue(_ job: NewJob, at now: Date, on db: any Database) async throws -> UUID? {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        guard !job.queue.isEmpty, job.maxAttempts >= 1 else { throw JobQueueError.invalidJob }
        struct Row: Decodable { let id: UUID }
        let id = UUID.timeOrdered()
        return try await sql.raw("""
            INSERT INTO jobs (id, queue, payload, state, dedupe_key, attempts, max_attempts, run_at, created_at)
            VALUES (\(bind: id), \(bind: job.queue), \(bind: job.payload), \(bind: Job.State.queued.rawValue), \(bind: job.dedupeKey),
                    0, \(bind: job.maxAttempts), \(bind: job.runAt ?? now), \(bind: now))
            ON CONFLICT DO NOTHING RETURNING id
            """).first(decoding: Row.self)?.id
    }

    // MARK: Claiming and finishing

    /// Claims up to `limit` ready jobs of `queues` for one lease: queued jobs that are due,
    /// and running jobs whose lease has run out. With `reap`, first dead-letters the running
    /// jobs whose lease ran out on their last attempt (a worker does that on its polls, not on
    /// every claim: such jobs are rare, and are never claimed either way).
    func claim(queues: [String], limit: Int, reap: Bool = true, on db: any Database) async throws -> [ClaimedJob] {
        guard !queues.isEmpty, limit > 0 else { return [] }
        let now = clock.now()
        let expires = now.addingTimeInterval(Self.seconds(lease))
        let node = self.node
        return try await db.writeTransaction(gate) { tx in
            guard let sql = tx as? any SQLDatabase else { throw StorageError.notSQL }
            let inQueues: SQLQueryString = "queue IN (\(binds: queues))"
            if reap {
                try await sql.raw("""
                UPDATE jobs SET state = \(bind: Job.State.dead.rawValue), locked_by = NULL, lease_expires_at = NULL,
                       finished_at = \(bind: now), last_error = \(bind: "the lease ran out on its last attempt")
                WHERE \(inQueues) AND state = \(bind: Job.State.running.rawValue)
                  AND lease_expires_at <= \(bind: now) AND attempts >= max_attempts
                """).run()
            }
            let skipLocked: SQLQueryString = sql.dialect.name == "postgresql" ? "FOR UPDATE SKIP LOCKED" : ""
            struct Row: Decodable {
                let id: UUID, queue: String, payload: String, attempts: Int, max_attempts: Int, created_at: Date
            }
            let rows = try await sql.raw("""
                UPDATE jobs SET state = \(bind: Job.State.running.rawValue), attempts = attempts + 1,
                       locked_by = \(bind: node), lease_expires_at = \(bind: expires)
                WHERE id IN (
                    SELECT id FROM jobs
                    WHERE \(inQueues) AND ((state = \(bind: Job.State.queued.rawValue) AND run_at <= \(bind: now))
                       OR (state = \(bind: Job.State.running.rawValue) AND lease_expires_at <= \(bind: now)
                           AND attempts < max_attempts))
                    ORDER BY run_at, created_at LIMIT \(unsafeRaw: String(limit)) \(skipLocked))
                RETURNING id, queue, payload, attempts, max_attempts, created_at
                """).all(decoding: Row.self)
            return rows.map {
                ClaimedJob(id: $0.id, queue: $0.queue, payload: $0.payload, attempt: $0.attempts, maxAttempts: $0.max_attempts,
                           createdAt: $0.created_at, holder: node)
            }
        }
    }

    /// Extends the lease of a job this node still holds; false when the claim was lost (the
    /// lease ran out and another node took the job, or it was finished).
    func renew(_ job: ClaimedJob, on db: any Database) async throws -> Bool {
        let expires = clock.now().addingTimeInterval(Self.seconds(lease))
        return try await update(job, on: db, "lease_expires_at = \(bind: expires)")
    }

    /// Marks the job done; false when this node no longer held it.
    @discardableResult
    func succeed(_ job: ClaimedJob, on db: any Database) async throws -> Bool {
        try await update(job, on: db, """
            state = \(bind: Job.State.succeeded.rawValue), locked_by = NULL, lease_expires_at = NULL, finished_at = \(bind: clock.now())
            """)
    }

    /// Marks the job done inside the handler's own write transaction (the one that records
    /// the work's result), so finishing costs no transaction of its own; the worker learns of
    /// it when that transaction commits. False when the claim was lost.
    @discardableResult
    static func succeed(_ job: ClaimedJob, at now: Date, in outbox: Outbox) async throws -> Bool {
        guard let sql = outbox.db as? any SQLDatabase else { throw StorageError.notSQL }
        let held = try await !sql.raw("""
            UPDATE jobs SET state = \(bind: Job.State.succeeded.rawValue), locked_by = NULL, lease_expires_at = NULL,
                   finished_at = \(bind: now)
            WHERE id = \(bind: job.id) AND locked_by = \(bind: job.holder) AND attempts = \(bind: job.attempt)
              AND state = \(bind: Job.State.running.rawValue) RETURNING id
            """).all().isEmpty
        if held { outbox.noteJobSettled(job.id) }
        return held
    }

    /// Records a failed attempt: the job is queued again after the back-off, or dead-lettered
    /// when it has no attempts left or the failure is permanent. Returns the job's new state,
    /// or nil when this node no longer held it.
    @discardableResult
    func fail(_ job: ClaimedJob, error: String, permanent: Bool = false, on db: any Database) async throws -> Job.State? {
        let now = clock.now()
        let message = String(error.prefix(2000))
        if permanent || job.attempt >= job.maxAttempts {
            let held = try await update(job, on: db, """
                state = \(bind: Job.State.dead.rawValue), locked_by = NULL, lease_expires_at = NULL,
                finished_at = \(bind: now), last_error = \(bind: message)
                """)
            return held ? .dead : nil
        }
        let retryAt = now.addingTimeInterval(backoff.delay(afterAttempt: job.attempt))
        let held = try await update(job, on: db, """
            state = \(bind: Job.State.queued.rawValue), locked_by = NULL, lease_expires_at = NULL,
            run_at = \(bind: retryAt), last_error = \(bind: message)
            """)
        return held ? .queued : nil
    }

    /// Applies `assignments` to the job if this node still holds this claim of it.
    private func update(_ job: ClaimedJob, on db: any Database, _ assignments: SQLQueryString) async throws -> Bool {
        let node = self.node
        return try await db.writeTransaction(gate) { tx in
            guard let sql = tx as? any SQLDatabase else { throw StorageError.notSQL }
            let head: SQLQueryString = "UPDATE jobs SET "
            let tail: SQLQueryString = """
                 WHERE id = \(bind: job.id) AND locked_by = \(bind: node) AND attempts = \(bind: job.attempt)
                  AND state = \(bind: Job.State.running.rawValue) RETURNING id
                """
            return try await !sql.raw(head + assignments + tail).all().isEmpty
        }
    }

    // MARK: Looking at the queue

    /// Jobs per queue and state, with the oldest due `queued` job's due time.
    struct Depth: Sendable, Equatable {
        let queue: String
        let state: Job.State
        let count: Int
        /// For `queued`: the earliest `run_at` that is already due (nil when none is due).
        let oldestDue: Date?
    }

    static func depths(at now: Date, on db: any Database) async throws -> [Depth] {
        guard let sql = db as? any SQLDatabase else { return [] }
        struct Row: Decodable { let queue: String; let state: String; let n: Int; let oldest: Date? }
        let rows = try await sql.raw("""
            SELECT queue, state, COUNT(*) AS n,
                   MIN(CASE WHEN state = \(bind: Job.State.queued.rawValue) AND run_at <= \(bind: now) THEN run_at END) AS oldest
            FROM jobs GROUP BY queue, state
            """).all(decoding: Row.self)
        return rows.compactMap { row in
            Job.State(rawValue: row.state).map { Depth(queue: row.queue, state: $0, count: row.n, oldestDue: row.oldest) }
        }
    }

    /// Deletes succeeded jobs finished before `cutoff` (dead ones stay for an operator).
    @discardableResult
    static func pruneSucceeded(before cutoff: Date, gate: WriteGate?, on db: any Database) async throws -> Int {
        try await db.writeTransaction(gate) { tx in
            guard let sql = tx as? any SQLDatabase else { return 0 }
            return try await sql.raw("""
                DELETE FROM jobs WHERE state = \(bind: Job.State.succeeded.rawValue) AND finished_at < \(bind: cutoff) RETURNING id
                """).all().count
        }
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        TimeInterval(duration.components.seconds) + TimeInterval(duration.components.attoseconds) / 1e18
    }
}
