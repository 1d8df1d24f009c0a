import Fluent
import Foundation
import NIOConcurrencyHelpers
import SQLKit

/// What one write transaction leaves for after its commit: the domain events it recorded (in
/// the log, in the same transaction) and whether it enqueued jobs.
///
/// A write transaction hands one to its closure (`db.writeTransaction(gate) { tx, outbox in … }`);
/// when the transaction commits, the write gate passes `commit` to its observers, which
/// publish the events on this node and wake the job workers. A rolled-back transaction
/// leaves nothing.
final class Outbox: Sendable {
    /// Work another feature does in the transaction that records an event (see
    /// `WriteGate.react(to:_:)`): the event as recorded, its conversation, and this outbox
    /// (whose `db` is the transaction).
    typealias Reaction = @Sendable (_ event: any DomainEvent, _ conversationID: UUID, _ outbox: Outbox) async throws -> Void
    typealias Reactions = [EventType: [Reaction]]

    let db: any Database
    private let reactions: Reactions
    private let state = NIOLockedValueBox(State())

    private struct State {
        var events: [CommittedEvent] = []
        var jobsEnqueued = false
        var claimedJobs: [JobWorker.HandOff] = []
        var settledJobs: [UUID] = []
        var afterCommit: [@Sendable () -> Void] = []
        var ordered = false
    }

    init(db: any Database, reactions: Reactions = [:]) {
        self.db = db
        self.reactions = reactions
    }

    /// Appends an event to the log; it commits with the transaction or not at all. The
    /// reactions registered for its type run next, in this transaction.
    func record<E: DomainEvent>(_ event: E, in conversationID: UUID, visibleTo userID: UUID? = nil, at now: Date) async throws {
        try await append(event, in: conversationID, visibleTo: userID, at: now)
        for reaction in reactions[E.type] ?? [] { try await reaction(event, conversationID, self) }
    }

    /// Takes the event log's order lock now, as the transaction's first event would (on
    /// PostgreSQL). For a transaction that changes rows a send may change after its own first
    /// event (an assistant's runs), before it touches them: both then take the two locks in
    /// the same order, and never wait on each other in a deadlock.
    func holdOrder() async throws {
        // A transaction that recorded an event holds it already.
        guard !state.withLockedValue({ $0.ordered }) else { return }
        try await EventLog.holdOrder(on: db)
    }

    /// Runs `action` once the transaction has committed (after the gate's observers), on the
    /// committing task; never when it rolls back. For what must not happen to uncommitted
    /// state, such as stopping a run this transaction marked to stop.
    func afterCommit(_ action: @escaping @Sendable () -> Void) {
        state.withLockedValue { $0.afterCommit.append(action) }
    }

    private func append<E: DomainEvent>(_ event: E, in conversationID: UUID, visibleTo userID: UUID?, at now: Date) async throws {
        let payload = String(decoding: try EventLog.encoder.encode(event), as: UTF8.self)
        let first = state.withLockedValue { state in
            defer { state.ordered = true }
            return !state.ordered
        }
        let id = try await EventLog.append(type: E.type, conversationID: conversationID, visibleTo: userID, payload: payload,
                                           at: now, firstInTransaction: first, on: db)
        let committed = CommittedEvent(id: id, type: E.type, conversationID: conversationID, visibleTo: userID,
                                       payload: payload, createdAt: now)
        state.withLockedValue { $0.events.append(committed) }
    }

    /// Notes that this transaction enqueued a job, so workers on this node look at once.
    func noteJobEnqueued() {
        state.withLockedValue { $0.jobsEnqueued = true }
    }

    /// Notes a job this transaction enqueued already claimed by this node's worker, to run
    /// in `slot` once it commits.
    func noteJobClaimed(_ job: JobQueue.ClaimedJob, slot: JobWorker.Slot) {
        state.withLockedValue { $0.claimedJobs.append(JobWorker.HandOff(job: job, slot: slot)) }
    }

    /// Notes that this transaction finished a job its worker is running.
    func noteJobSettled(_ id: UUID) {
        state.withLockedValue { $0.settledJobs.append(id) }
    }

    /// The transaction rolled back: slots reserved for jobs it would have handed to this
    /// node's worker are given back now (not whenever the last reference to them goes).
    func rolledBack() {
        let handOffs = state.withLockedValue { state in
            defer { state.claimedJobs = [] }
            return state.claimedJobs
        }
        for handOff in handOffs { handOff.slot.giveBack() }
    }

    var commit: Commit {
        state.withLockedValue {
            Commit(events: $0.events, enqueuedJobs: $0.jobsEnqueued, claimedJobs: $0.claimedJobs, settledJobs: $0.settledJobs,
                   afterCommit: $0.afterCommit)
        }
    }

    /// What a committed transaction left.
    struct Commit: Sendable {
        var events: [CommittedEvent]
        var enqueuedJobs: Bool
        /// Jobs it enqueued already claimed by this node, for its worker to run now.
        var claimedJobs: [JobWorker.HandOff] = []
        /// Jobs it marked done (a handler finishing its job in its own transaction).
        var settledJobs: [UUID] = []
        /// What the transaction asked to do once committed (`afterCommit(_:)`).
        var afterCommit: [@Sendable () -> Void] = []
    }
}
