import Fluent
import NIOConcurrencyHelpers
import SQLKit

/// Group commit for SQLite: write transactions that queue at the gate while another commits
/// are run together in one `BEGIN IMMEDIATE … COMMIT`, so a burst of sends pays for one
/// begin, one commit and one hand-over of the write lock instead of one each.
///
/// Each transaction stays atomic and alone in failing. The batch runs optimistically, each
/// closure after the other in the order they queued. If one throws, the whole batch rolls
/// back; that one gets its error, and the others run again, in the same order, in the next
/// batch. The result equals running them one by one: the failed one left nothing behind, and
/// every other one sees exactly the writes of those before it. So a closure may run more than
/// once, and only its database writes and its outbox may have effects (which is the
/// contract of a write transaction already: after a rollback the outbox is dropped and the job
/// slots it reserved are given back).
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

    init(gate: WriteGate, maxBatch: Int = 32, onQueue: (@Sendable (Int) -> Void)? = nil) {
        self.gate = gate
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
        var carried: [Pending] = []
        while true {
            let batch: [Pending] = state.withLockedValue { state in
                let room = max(0, maxBatch - carried.count)
                let taken = Array(state.queue.prefix(room))
                state.queue.removeFirst(taken.count)
                let batch = carried + taken
                if batch.isEmpty { state.leading = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            carried = await commit(batch, on: db)
        }
    }

    /// Runs `batch` in one transaction. Returns the transactions to run again (those of a
    /// batch rolled back because one of them failed).
    private func commit(_ batch: [Pending], on db: any Database) async -> [Pending] {
        struct Ran: Sendable {
            var outboxes: [Outbox] = []
            var results: [any Sendable] = []
            var failed: (index: Int, error: any Error)?
        }
        let ran: Ran
        do {
            ran = try await db.withConnection { connection in
                guard let sql = connection as? any SQLDatabase else { throw StorageError.notSQL }
                var ran = Ran()
                try await sql.raw("BEGIN IMMEDIATE").run()
                for (index, pending) in batch.enumerated() {
                    let outbox = Outbox(db: connection)
                    ran.outboxes.append(outbox)
                    do {
                        ran.results.append(try await pending.work(connection, outbox))
                    } catch {
                        ran.failed = (index, error)
                        break
                    }
                }
                guard ran.failed == nil else {
                    try? await sql.raw("ROLLBACK").run()
                    return ran
                }
                do {
                    try await sql.raw("COMMIT").run()
                } catch {
                    try? await sql.raw("ROLLBACK").run()
                    for outbox in ran.outboxes { outbox.rolledBack() }
                    throw error
                }
                return ran
            }
        } catch {
            // No connection, or BEGIN or COMMIT failed: nothing committed, for any of them.
            for pending in batch { pending.continuation.resume(throwing: error) }
            return []
        }
        if let failed = ran.failed {
            for outbox in ran.outboxes { outbox.rolledBack() }
            batch[failed.index].continuation.resume(throwing: failed.error)
            var again = batch
            again.remove(at: failed.index)
            return again
        }
        committedCounts.withLockedValue { $0 = ($0.batches + 1, max($0.largest, batch.count)) }
        for (index, pending) in batch.enumerated() {
            gate.committed(ran.outboxes[index].commit)
            pending.continuation.resume(returning: ran.results[index])
        }
        return []
    }
}
