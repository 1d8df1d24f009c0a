import Fluent
import Foundation
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// Starts runs from committed messages: follows the event log with a durable cursor, and for
/// each `message.created` that mentions an assistant member (`@handle`), or is sent in a
/// direct conversation with one, creates the run and its job in one transaction with moving
/// the cursor past it.
///
/// A run this node can execute at once (its worker has a free slot) is created `running`,
/// with its `run.started` event and its job already claimed by this node, in that same
/// transaction: the worker starts it as soon as it commits, and the executor takes the run
/// and the assistant's configuration from memory instead of reading them again.
///
/// The cursor moves by compare-and-set in that transaction, so a crash before the commit
/// leaves the messages to be read again, and a crash after it has left the runs behind: a
/// message starts exactly one run, on any number of nodes (each runs a dispatcher; the one
/// whose compare-and-set loses rolls back and reads on). The unique (assistant, message) key
/// on runs is the second guard.
final class AssistantDispatcher: LifecycleHandler, Sendable {
    static let cursorName = "dispatch"
    static let jobQueue = "assistant.run"

    private let database: @Sendable () throws -> any Database
    private let writes: WriteGate
    private let clock: AppClock
    private let domainEvents: DomainEvents
    private let registry: RunRegistry
    /// A slot in this node's job worker for a run to start here at once (nil: none free).
    private let reserveSlot: @Sendable (String) -> JobWorker.Slot?
    private let logger: Logger
    private let pollInterval: Duration
    private let watch = LogWatch()

    init(database: @escaping @Sendable () throws -> any Database, writes: WriteGate, clock: AppClock,
         domainEvents: DomainEvents, registry: RunRegistry, reserveSlot: @escaping @Sendable (String) -> JobWorker.Slot? = { _ in nil },
         logger: Logger, pollInterval: Duration = .seconds(1)) {
        self.database = database
        self.writes = writes
        self.clock = clock
        self.domainEvents = domainEvents
        self.registry = registry
        self.reserveSlot = reserveSlot
        self.logger = logger
        self.pollInterval = pollInterval
    }

    func didBootAsync(_ application: Application) async throws {
        // This node's commits wake the dispatcher at once; other nodes' are found by polling.
        watch.start("assistants", domainEvents: domainEvents, types: [.messageCreated], pollInterval: pollInterval, logger: logger) {
            [self] woken in try await dispatchOnce(woken: woken)
        }
    }

    func shutdownAsync(_ application: Application) async {
        await watch.stop()
    }

    /// Reads one batch after the cursor and starts its runs. Returns whether the cursor moved
    /// (there may be more).
    /// `woken`: this node's commits woke it (see `DomainEvents.events(after:limit:on:woken:)`).
    @discardableResult
    func dispatchOnce(woken: Bool = false) async throws -> Bool {
        let db = try database()
        var (position, durable) = progress.withLockedValue { ($0.position, $0.durable) }
        if durable == nil || position == nil {
            let cursor = try await Self.cursor(on: db)
            (position, durable) = (cursor, cursor)
            progress.withLockedValue { $0.position = cursor; $0.durable = cursor }
        }
        guard let position, let durable else { return false }
        let events = try await domainEvents.events(after: position, on: db, woken: woken)
        guard let through = events.last?.id else { return false }
        // Membership changes in this window make the cached assistant members stale.
        let changed = Set(events.filter { [.memberJoined, .memberLeft, .conversationDeleted].contains($0.type) }.map(\.conversationID))
        progress.withLockedValue { state in for id in changed { state.assistantMembers[id] = nil } }
        // Only messages in conversations with an assistant member are decoded. A held message
        // starts nothing (its event carries no text).
        let messageEvents = events.filter { $0.type == .messageCreated }
        let members = try await assistantMembers(in: Set(messageEvents.map(\.conversationID)), on: db)
        let withAssistants = Set(members.map(\.conversationID))
        let messages = messageEvents.filter { withAssistants.contains($0.conversationID) }.compactMap { event -> MessageDTO? in
            try? EventLog.decoder.decode(MessageDTO.self, from: Data(event.payload.utf8))
        }.filter { $0.moderation?.state != .held }
        let triggers = Self.triggers(for: messages, members: members)
        guard !triggers.isEmpty else {
            // Nothing to start: move on in memory only. The durable cursor moves with the next
            // runs it starts; after a crash these messages are read again and start nothing again.
            progress.withLockedValue { $0.position = through }
            return true
        }
        let configs = try await Assistant.configurations(Array(Set(triggers.map(\.assistantID))), on: db)
        let now = clock.now()
        let registry = self.registry, reserveSlot = self.reserveSlot
        let cancelled: [UUID]? = try await db.writeTransaction(writes) { tx, outbox in
            guard try await Self.advance(from: durable, to: through, on: tx) else { return nil }
            var cancelled: [UUID] = []
            for trigger in triggers {
                guard let config = configs[trigger.assistantID] else { continue }
                let start = try await Self.start(trigger, policy: config.busyPolicy, at: now, tx: tx, outbox: outbox,
                                                 reserveSlot: reserveSlot)
                cancelled += start.stopping
                // Before the commit, so the executor finds it however soon the worker starts.
                if let run = start.startedHere { registry.handOff(run, config) }
            }
            return cancelled
        }
        guard let cancelled else {
            // Another node moved the cursor (and started these runs, or is about to): read on from it.
            progress.withLockedValue { $0.position = nil; $0.durable = nil }
            return true
        }
        progress.withLockedValue { $0.position = through; $0.durable = through }
        // Runs this node executes stop at once; other nodes see the flag within a second.
        for id in cancelled { registry.cancel(id) }
        return true
    }

    /// How far this dispatcher has read (`position`, possibly past the durable cursor when the
    /// messages since started nothing), the durable cursor as it last saw it, and the assistant
    /// members of the conversations it has looked at (dropped when the log shows a change).
    private struct Progress {
        var position: Int?
        var durable: Int?
        var assistantMembers: [UUID: [Membership.KindMember]] = [:]
    }

    private let progress = NIOLockedValueBox(Progress())

    private func assistantMembers(in wanted: Set<UUID>, on db: any Database) async throws -> [Membership.KindMember] {
        let known = progress.withLockedValue { $0.assistantMembers }
        let missing = wanted.filter { known[$0] == nil }
        var found = known.filter { wanted.contains($0.key) }
        if !missing.isEmpty {
            let loaded = try await Membership.members(ofKind: .assistant, in: Array(missing), on: db)
            let grouped = Dictionary(grouping: loaded, by: \.conversationID)
            var fresh: [UUID: [Membership.KindMember]] = [:]
            for id in missing { fresh[id] = grouped[id] ?? [] }
            progress.withLockedValue { state in
                if state.assistantMembers.count > 10_000 { state.assistantMembers.removeAll() }
                state.assistantMembers.merge(fresh) { _, new in new }
            }
            found.merge(fresh) { _, new in new }
        }
        return found.values.flatMap { $0 }
    }

    struct Trigger: Sendable {
        let message: MessageDTO
        let assistantID: UUID
    }

    /// Which assistants each message asks: a mention of a member assistant's handle, or any
    /// message in a direct conversation with one. Assistants' own messages ask nobody.
    static func triggers(for messages: [MessageDTO], members: [Membership.KindMember]) -> [Trigger] {
        guard !members.isEmpty else { return [] }
        let assistants = Set(members.map(\.userID))
        var triggers: [Trigger] = []
        for message in messages {
            guard let author = UUID(uuidString: message.authorID), !assistants.contains(author),
                  let conversation = UUID(uuidString: message.conversationID), message.body != nil
            else { continue }
            // The mentions the server resolved when the message was written (not the text
            // parsed again: an @handle inside code mentions nobody).
            let mentioned = Set(MessageFormat.mentions(in: message.content ?? []).userIDs)
            for member in members where member.conversationID == conversation {
                if member.conversationKind == .direct || mentioned.contains(member.userID) {
                    triggers.append(Trigger(message: message, assistantID: member.userID))
                }
            }
        }
        return triggers
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
        guard let conversationID = UUID(uuidString: trigger.message.conversationID),
              let messageID = UUID(uuidString: trigger.message.id),
              let requesterID = UUID(uuidString: trigger.message.authorID)
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
        let runID = UUID()
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
    /// queued or running there any more.
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

    // MARK: The cursor (the `assistant_cursor` table's SQL)

    static func cursor(on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let position: Int }
        return try await sql.raw("SELECT position FROM assistant_cursor WHERE name = \(bind: cursorName)")
            .first(decoding: Row.self)?.position ?? 0
    }

    /// Moves the cursor from `old` to `new`; false when another node moved it first.
    static func advance(from old: Int, to new: Int, on db: any Database) async throws -> Bool {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let name: String }
        return try await sql.raw("""
            UPDATE assistant_cursor SET position = \(bind: new) WHERE name = \(bind: cursorName) AND position = \(bind: old)
            RETURNING name
            """).first(decoding: Row.self) != nil
    }
}
