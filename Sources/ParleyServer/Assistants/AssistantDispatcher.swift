import Fluent
import Foundation
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// Starts runs from messages, in the transaction that writes the message: a message that
/// mentions an assistant member (`@handle`), or is sent in a direct conversation with one,
/// commits together with its run and the run's job, or neither commits. So a crash can never
/// leave a message without its run or start one twice, on any number of nodes, and a send
/// that rolls back (an idempotent replay, a failed write) starts nothing. It is a reaction to
/// `message.created` registered on the write gate (`WriteGate.react(to:_:)`), so the message
/// code knows nothing of assistants.
///
/// A run this node can execute at once (its worker has a free slot) is created `running`,
/// with its `run.started` event and its job already claimed by this node: the worker starts
/// it as soon as the message commits, and the executor takes the run and the assistant's
/// configuration from memory instead of reading them again.
///
/// An ordinary message costs no query once its conversation is known: whether a conversation
/// is direct, and its assistant member if so, never change (a direct conversation's two
/// members cannot leave), so they are kept; only a message that mentions someone asks the
/// database which of them (and its author) are assistant members.
final class AssistantDispatcher: Sendable {
    static let jobQueue = "assistant.run"

    private let clock: AppClock
    private let registry: RunRegistry
    /// A slot in this node's job worker for a run to start here at once (nil: none free).
    private let reserveSlot: @Sendable (String) -> JobWorker.Slot?
    /// Conversation id → its direct assistant member (`.direct(nil)`: direct, with none).
    private let conversations = NIOLockedValueBox<[UUID: Shape]>([:])

    private enum Shape { case group, direct(assistant: UUID?) }

    init(clock: AppClock, registry: RunRegistry, reserveSlot: @escaping @Sendable (String) -> JobWorker.Slot? = { _ in nil }) {
        self.clock = clock
        self.registry = registry
        self.reserveSlot = reserveSlot
    }

    /// Registers the reaction: every `message.created` the gate's transactions record.
    func attach(to gate: WriteGate) {
        gate.react(to: MessageSent.type) { [self] event, conversationID, outbox in
            guard let sent = event as? MessageSent else { return }
            try await start(for: sent.message, in: conversationID, outbox: outbox)
        }
    }

    /// Starts the runs `message` asks for, in the transaction of `outbox`. A held message
    /// starts nothing (its event carries no text).
    func start(for message: MessageDTO, in conversationID: UUID, outbox: Outbox) async throws {
        guard message.body != nil, message.moderation?.state != .held, let author = UUID(wire: message.authorID) else { return }
        let tx = outbox.db
        var asked: [UUID] = []
        if case .direct(let assistant?) = try await shape(of: conversationID, on: tx) {
            // An assistant's own messages ask nobody.
            guard assistant != author else { return }
            asked.append(assistant)
        }
        // The mentions the server resolved when the message was written (not the text parsed
        // again: an @handle inside code mentions nobody).
        let mentioned = MessageFormat.mentions(in: message.content ?? []).userIDs.filter { $0 != author && !asked.contains($0) }
        if !mentioned.isEmpty {
            let assistants = try await Membership.members([author] + mentioned, ofKind: .assistant, in: conversationID, on: tx)
            guard !assistants.contains(author) else { return }
            asked += mentioned.filter(assistants.contains)
        }
        guard !asked.isEmpty else { return }
        let configs = try await Assistant.configurations(asked, on: tx)
        let now = clock.now(), registry = self.registry
        for assistantID in asked {
            guard let config = configs[assistantID] else { continue }
            let started = try await Self.start(Trigger(message: message, assistantID: assistantID), policy: config.busyPolicy, at: now,
                                               tx: tx, outbox: outbox, reserveSlot: reserveSlot)
            // Before the commit, so the executor finds it however soon the worker starts.
            if let run = started.startedHere { registry.handOff(run, config) }
            // Runs this node executes stop once the interrupting message commits; other nodes
            // see the flag within a second.
            for id in started.stopping { outbox.afterCommit { registry.cancel(id) } }
        }
    }

    private func shape(of conversationID: UUID, on db: any Database) async throws -> Shape {
        if let known = conversations.withLockedValue({ $0[conversationID] }) { return known }
        guard let found = try await Membership.directMember(ofKind: .assistant, in: conversationID, on: db) else { return .group }
        let shape: Shape = found.kind == .direct ? .direct(assistant: found.userID) : .group
        conversations.withLockedValue { known in
            if known.count > 100_000 { known.removeAll() }
            known[conversationID] = shape
        }
        return shape
    }

    struct Trigger: Sendable {
        let message: MessageDTO
        let assistantID: UUID
    }

    /// What creating one run did: the running runs it asked to stop, and the run when it was
    /// started on this node at once.
    struct Start {
        var stopping: [UUID] = []
        var startedHere: AssistantRun?
    }

    /// Creates the run for one trigger under the assistant's busy policy. A run that may go
    /// at once and finds a free slot in this node's worker is created `running`, with its
    /// `run.started` event and its job claimed for this node.
    static func start(_ trigger: Trigger, policy: Assistant.BusyPolicy, at now: Date, tx: any Database,
                      outbox: Outbox, reserveSlot: @Sendable (String) -> JobWorker.Slot? = { _ in nil }) async throws -> Start {
        guard let conversationID = UUID(wire: trigger.message.conversationID),
              let messageID = UUID(wire: trigger.message.id),
              let requesterID = UUID(wire: trigger.message.authorID)
        else { return Start() }
        let busy = try await AssistantRun.active(assistantID: trigger.assistantID, conversationID: conversationID, on: tx)
            .filter { $0.status != .awaitingApproval }
        var status = AssistantRun.Status.queued
        var stopping: [UUID] = []
        if !busy.isEmpty {
            switch policy {
            case .queue:
                status = .pending
            case .reject:
                status = .rejected
            case .interrupt:
                for run in busy {
                    if run.status == .running {
                        _ = try await AssistantRun.transition(run.id, from: [.running], to: .running, set: [("cancel_requested", true)], on: tx)
                        stopping.append(run.id)
                    } else if let cancelled = try await AssistantRun.transitioned(run.id, from: [run.status], to: .cancelled,
                                                                                  set: [("finished_at", now), ("error", "interrupted by a newer message")], on: tx) {
                        try await outbox.record(RunCancelled(RunDTO(cancelled)), in: conversationID, at: now)
                    }
                }
                status = stopping.isEmpty ? .queued : .pending
            }
        }
        let run = AssistantRun()
        let runID = UUID.timeOrdered()
        run.id = runID
        run.assistantID = trigger.assistantID
        run.conversationID = conversationID
        run.triggerMessageID = messageID
        run.triggerSeq = trigger.message.seq
        run.requesterID = requesterID
        run.createdAt = now
        // The columns the insert sets to their starting values, so the run is whole in memory.
        run.promptTokens = 0
        run.completionTokens = 0
        run.costUSD = 0
        run.approvalRound = 0
        run.cancelRequested = false
        let slot = status == .queued ? reserveSlot(jobQueue) : nil
        if slot != nil {
            run.status = .running
            run.startedAt = now
        } else {
            run.status = status
        }
        guard try await AssistantRun.insert(run, on: tx) else { return Start(stopping: stopping) }
        if let slot {
            try await outbox.record(RunStarted(RunDTO(run)), in: conversationID, at: now)
            try await enqueue(runID: runID, round: 0, at: now, in: outbox, runningIn: slot)
            return Start(stopping: stopping, startedHere: run)
        }
        if status == .queued || status == .rejected {
            try await enqueue(runID: runID, round: 0, at: now, in: outbox)
        }
        return Start(stopping: stopping)
    }

    /// The job that executes (or resumes) a run; one per run and approval round. With a
    /// `slot`, claimed by this node's worker, which runs it when the transaction commits.
    static func enqueue(runID id: UUID, round: Int, at now: Date, in outbox: Outbox,
                        runningIn slot: JobWorker.Slot? = nil) async throws {
        let job = try JobQueue.NewJob(queue: jobQueue, payload: RunJob(runID: id), dedupeKey: "assistant-run:\(id.wire):\(round)",
                                      maxAttempts: 5)
        if let slot {
            try await JobQueue.enqueue(job, at: now, in: outbox, runningIn: slot)
        } else {
            try await JobQueue.enqueue(job, at: now, in: outbox)
        }
    }

    /// Queues the oldest pending run of the assistant in the conversation, when none is
    /// queued or running there any more. Call it holding the event log's order lock (after
    /// `Outbox.holdOrder()` or an event): on PostgreSQL a send holds it from its message to
    /// its commit, so a run that a concurrent send creates `pending` behind the ending one is
    /// either seen here or sees that one ended.
    static func promoteNext(assistantID: UUID, conversationID: UUID, at now: Date, tx: any Database, outbox: Outbox) async throws {
        let active = try await AssistantRun.active(assistantID: assistantID, conversationID: conversationID, on: tx)
        guard !active.contains(where: { $0.status == .queued || $0.status == .running }),
              let next = active.first(where: { $0.status == .pending }),
              try await AssistantRun.transition(next.id, from: [.pending], to: .queued, on: tx)
        else { return }
        try await enqueue(runID: next.id, round: 0, at: now, in: outbox)
    }

    struct RunJob: Codable, Sendable {
        var runID: UUID
    }
}
