import Fluent
import NIOConcurrencyHelpers
import SQLKit

/// Group commit for SQLite: write transactions that queue at the gate while another commits
/// are run together in one `BEGIN IMMEDIATE … COMMIT`, so a burst of sends pays for one
/// begin, one commit and one hand-over of the write lock instead of one each.
///
/// Each transaction stays atomic and alone in failing: in a batch of more than one, each
/// closure runs inside a savepoint, in the order they queued. One that throws is rolled back
/// to its savepoint (its writes undone, its outbox dropped) and gets its error; the others go
/// on and commit. The result equals running them one by one, and every closure runs exactly
/// once, so a Fluent model saved inside one keeps an in-memory state that matches the row.
/// Only an error SQLite answers by rolling back the whole transaction (a full disk, I/O)
/// fails the whole batch, each with that error.
///
/// Written by hand: neither sqlite-nio nor Fluent batches transactions.
final class GroupCommit: Sendable {
    typealias Work = @Sendable (any Database, Outbox) async throws -> any Sendable

    /// One queued transaction. Its continuation is resumed once, after the batch that ran it
    /// committed or when it failed.
    private final class Pending: @unchecked Sendable {
        let work: Work
        let continuation: CheckedContinuation<any Sendable, any Error>

        init(work: @escaping Work, continuation: CheckedContinuation<any Sendable, any Error>) {
            self.work = work
            self.continuation = continuation
        }
    }

    /// At most this many transactions share a commit (a bound on how long the first waits).
    let maxBatch: Int
    /// The gate this belongs to (which holds it for its whole life).
    private unowned let gate: WriteGate
    private let state = NIOLockedValueBox<(queue: [Pending], leading: Bool)>(([], false))
    /// Called with the queue's length after each arrival (tests use it to know who waits).
    private let onQueue: (@Sendable (Int) -> Void)?
    private let committedCounts = NIOLockedValueBox<(batches: Int, largest: Int)>((0, 0))
    /// Parley's own write connection, when there is one (see `DirectSQLiteConnection`).
    private let writer: DirectSQLiteConnection?

    init(gate: WriteGate, writer: DirectSQLiteConnection? = nil, maxBatch: Int = 32, onQueue: (@Sendable (Int) -> Void)? = nil) {
        self.gate = gate
        self.writer = writer
        self.maxBatch = max(1, maxBatch)
        self.onQueue = onQueue
    }

    /// How many batches committed, and the most transactions one of them held.
    var committed: (batches: Int, largest: Int) { committedCounts.withLockedValue { $0 } }

    /// Queues a transaction on `db` and waits until it committed (its result) or failed.
    func run<T: Sendable>(on db: any Database, _ work: @escaping @Sendable (any Database, Outbox) async throws -> T) async throws -> T {
        let result = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<any Sendable, any Error>) in
            let pending = Pending(work: { tx, outbox in try await work(tx, outbox) }, continuation: continuation)
            let (lead, queued) = state.withLockedValue { state -> (Bool, Int) in
                state.queue.append(pending)
                if state.leading { return (false, state.queue.count) }
                state.leading = true
                return (true, state.queue.count)
            }
            onQueue?(queued)
            // The first to arrive at an idle gate leads: it commits batches until the queue is empty.
            if lead { Task { await self.lead(on: db) } }
        }
        guard let typed = result as? T else { throw StorageError.notSQL }
        return typed
    }

    private func lead(on db: any Database) async {
        while true {
            let batch: [Pending] = state.withLockedValue { state in
                let taken = Array(state.queue.prefix(maxBatch))
                state.queue.removeFirst(taken.count)
                if taken.isEmpty { state.leading = false }
                return taken
            }
            guard !batch.isEmpty else { return }
            await commit(batch, on: db)
        }
    }

    /// Runs `batch` in one transaction and answers every caller in it.
    private func commit(_ batch: [Pending], on db: any Database) async {
        let outcomes: [(outbox: Outbox, result: Result<any Sendable, any Error>)]
        do {
            if let writer {
                let connection = DirectSQLiteDatabase(writer: writer, context: db.context)
                try await writer.begin(on: db.eventLoop, logger: db.logger)
                outcomes = try await Self.run(batch, gate: gate, on: connection, begun: true)
            } else {
                let gate = self.gate
                outcomes = try await db.withConnection { connection in try await Self.run(batch, gate: gate, on: connection, begun: false) }
            }
        } catch {
            // Nothing committed, for any of them.
            for pending in batch { pending.continuation.resume(throwing: error) }
            return
        }
        committedCounts.withLockedValue { $0 = ($0.batches + 1, max($0.largest, batch.count)) }
        for (pending, outcome) in zip(batch, outcomes) {
            switch outcome.result {
            case .success(let result):
                gate.committed(outcome.outbox.commit)
                pending.continuation.resume(returning: result)
            case .failure(let error):
                pending.continuation.resume(throwing: error)
            }
        }
    }

    /// Runs `batch` in one transaction on `connection` (begun already, or begun here) and
    /// commits it; each closure's outcome, or the error that failed them all.
    private static func run(_ batch: [Pending], gate: WriteGate, on connection: any Database,
                            begun: Bool) async throws -> [(outbox: Outbox, result: Result<any Sendable, any Error>)] {
        guard let sql = connection as? any SQLDatabase else { throw StorageError.notSQL }
        if !begun { try await sql.raw("BEGIN IMMEDIATE").run() }
        // One alone needs no savepoint: if it fails, the whole transaction rolls back.
        let savepoints = batch.count > 1
        var outcomes: [(outbox: Outbox, result: Result<any Sendable, any Error>)] = []
        do {
            for pending in batch {
                let outbox = gate.outbox(on: connection)
                if savepoints { try await sql.raw("SAVEPOINT parley_group").run() }
                do {
                    let result = try await pending.work(connection, outbox)
                    if savepoints { try await sql.raw("RELEASE parley_group").run() }
                    outcomes.append((outbox, .success(result)))
                } catch {
                    outbox.rolledBack()
                    guard savepoints else { throw error }
                    // Fails itself when SQLite already rolled the whole transaction
                    // back; then the batch fails (below).
                    try await sql.raw("ROLLBACK TO parley_group").run()
                    try await sql.raw("RELEASE parley_group").run()
                    outcomes.append((outbox, .failure(error)))
                }
            }
            try await sql.raw("COMMIT").run()
        } catch {
            try? await sql.raw("ROLLBACK").run()
            for outcome in outcomes { outcome.outbox.rolledBack() }
            throw error
        }
        return outcomes
    }
}
