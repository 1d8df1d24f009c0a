import Fluent
import SQLKit
import Vapor

/// Where the hub writes a direct subscriber's frames (a WebSocket).
protocol FrameSink: Sendable {
    /// Sends `frame` without waiting for it to be written. False when the connection has too
    /// many frames unwritten: the sink has then told it where to resume and closed it.
    func write(_ frame: EventFrame) -> Bool
    /// Stops writing, tells the connection where to resume, and closes it (once).
    func cutOff()
}

/// Delivers committed events to this node's subscribers, in id order, each to the users who
/// may see it.
///
/// After every write transaction commits, the hub reads the events after the last id it has
/// delivered and fans them out. Commits happen in id order (SQLite has one writer; on
/// PostgreSQL events are inserted under a transaction-scoped advisory lock), so reading
/// "after the last id" never skips an event that commits later. A subscriber registers and
/// learns the hub's position atomically; it replays older events from the database itself,
/// so it sees every event exactly once across the switch from replay to live.
actor EventHub {
    struct Subscription: Sendable {
        let id: UUID
        /// Live frames have ids above this; replay up to and including it.
        let startID: Int
        let frames: AsyncStream<EventFrame>
    }

    /// A subscriber whose frames the hub writes itself (a WebSocket): no task is woken per
    /// frame and connection, the frame's bytes go to every connection as they are.
    struct DirectSubscription: Sendable {
        let id: UUID
        /// Live frames have ids above this; replay up to and including it.
        let startID: Int
    }

    private struct Subscriber {
        let userID: UUID
        var delivery: Delivery
    }

    private enum Delivery {
        /// Frames go into a stream the connection reads (SSE, and in-process listeners).
        case stream(AsyncStream<EventFrame>.Continuation)
        /// A direct subscriber still replaying from the log: live frames wait here, at most
        /// `bufferSize` of them.
        case holding([EventFrame])
        /// Frames are written to the sink at once; those with ids up to `floor` are skipped.
        case direct(any FrameSink, floor: Int)
    }

    private let database: @Sendable () throws -> any Database
    /// Frames a subscriber may have waiting before it is cut off.
    let bufferSize: Int
    private let logger: Logger
    private var lastID = 0
    private var started = false
    private var subscribers: [UUID: Subscriber] = [:]
    /// Users whose presence a subscriber asked for by name → those subscribers, and back.
    private var presenceWatchers: [UUID: Set<UUID>] = [:]
    private var watching: [UUID: Set<UUID>] = [:]
    private var watchSequence: [UUID: Int] = [:]
    /// Conversation → member ids, loaded on first use and kept current by member events.
    private var members: [UUID: Set<UUID>] = [:]
    /// Counts catch-ups (each forgets `members`): a load begun before one is not cached.
    private var epoch = 0
    private var pumping = false
    private var pumpAgain = false
    /// Set while nobody listens: the hub then reads nothing and re-reads its position when
    /// the next subscriber arrives.
    private var idle = true
    /// Callers waiting for the hub to have delivered up to an event id.
    private var positionWaiters: [UUID: (id: Int, continuation: CheckedContinuation<Void, Never>)] = [:]

    /// Reads a conversation's members just before an event (`EventAudience.members`; a test
    /// may hold it up to interleave the hub's work).
    typealias MemberLoader = @Sendable (_ conversationID: UUID, _ before: Int, _ db: any Database) async throws -> Set<UUID>
    private let loadMembers: MemberLoader

    /// Where this node's own newest events are read from memory (`DomainEvents`), if anywhere.
    private let recent: DomainEvents?

    init(database: @escaping @Sendable () throws -> any Database, bufferSize: Int, logger: Logger, recent: DomainEvents? = nil,
         loadMembers: @escaping MemberLoader = { try await EventAudience.members(of: $0, before: $1, on: $2) }) {
        self.database = database
        self.recent = recent
        self.loadMembers = loadMembers
        self.bufferSize = bufferSize
        self.logger = logger
    }

    /// Takes the current end of the log as the starting point. Idempotent.
    func start() async throws {
        guard !started else { return }
        lastID = try await EventLog.lastID(on: database())
        started = true
        idle = subscribers.isEmpty
    }

    /// Returns once the hub has delivered every event up to `id` to its subscribers, or has
    /// none left to deliver to (at once if so), or the caller is cancelled. For callers that
    /// must know a commit has reached the connections.
    func delivered(through id: Int) async {
        let waiter = UUID.timeOrdered()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                if lastID >= id || idle || Task.isCancelled {
                    continuation.resume()
                } else {
                    positionWaiters[waiter] = (id, continuation)
                }
            }
        } onCancel: {
            Task { await self.releaseWaiter(waiter) }
        }
    }

    private func releaseWaiter(_ waiter: UUID) {
        positionWaiters.removeValue(forKey: waiter)?.continuation.resume()
    }

    private func resumePositionWaiters() {
        guard !positionWaiters.isEmpty else { return }
        for (key, waiter) in positionWaiters where waiter.id <= lastID || idle {
            positionWaiters.removeValue(forKey: key)
            waiter.continuation.resume()
        }
    }

    /// New events were committed; read and deliver them.
    nonisolated func notify() {
        Task { await self.pump() }
    }

    func subscribe(userID: UUID) async throws -> Subscription {
        try await waitUntilActive()
        let id = UUID.timeOrdered()
        let (stream, continuation) = AsyncStream<EventFrame>.makeStream(bufferingPolicy: .bufferingOldest(bufferSize))
        subscribers[id] = Subscriber(userID: userID, delivery: .stream(continuation))
        continuation.onTermination = { [weak self] _ in
            Task { await self?.unsubscribe(id) }
        }
        return Subscription(id: id, startID: lastID, frames: stream)
    }

    /// Starts the hub if need be. Nothing was read while nobody listened: catch up on the
    /// position (and forget memberships that may have changed meanwhile) before registering.
    /// Subscribers that arrive together share one catch-up, and none registers until it is
    /// done, so no stale position is handed out or written back.
    private func waitUntilActive() async throws {
        try await start()
        while idle {
            if let catchUp {
                try await catchUp.value
            } else {
                let task = Task { try await self.catchUpPosition() }
                catchUp = task
                try await task.value
            }
        }
    }

    /// Registers a subscriber whose frames the hub will write to a sink (`attach`). Until then
    /// (while it replays the log up to `startID`) its live frames are held, and more than
    /// `bufferSize` of them cut it off. The caller unsubscribes when its connection closes.
    func subscribeDirect(userID: UUID) async throws -> DirectSubscription {
        try await waitUntilActive()
        let id = UUID.timeOrdered()
        subscribers[id] = Subscriber(userID: userID, delivery: .holding([]))
        return DirectSubscription(id: id, startID: lastID)
    }

    /// Writes the frames held for a direct subscriber, then every live frame as it comes,
    /// skipping those with ids up to `floor`. False when the subscriber is gone: it fell
    /// behind while replaying (or its sink refused a held frame and was cut off).
    func attach(_ id: UUID, sink: any FrameSink, floor: Int) -> Bool {
        guard let subscriber = subscribers[id], case .holding(let held) = subscriber.delivery else { return false }
        let direct = Subscriber(userID: subscriber.userID, delivery: .direct(sink, floor: floor))
        subscribers[id] = direct
        for frame in held {
            guard subscribers[id] != nil else { return false }
            deliver(frame, to: id, direct)
        }
        return subscribers[id] != nil
    }

    private var catchUp: Task<Void, any Error>?

    private func catchUpPosition() async throws {
        defer { catchUp = nil }
        let position = try await EventLog.lastID(on: database())
        // Pumps do nothing while idle, so nothing moved the position meanwhile.
        lastID = position
        members.removeAll()
        epoch += 1
        idle = false
        notify()
    }

    func unsubscribe(_ id: UUID) {
        if case .stream(let continuation) = subscribers.removeValue(forKey: id)?.delivery { continuation.finish() }
        unwatchPresence(id)
        watchSequence[id] = nil
        if subscribers.isEmpty {
            idle = true
            resumePositionWaiters()
        }
    }

    var subscriberCount: Int { subscribers.count }

    /// Ends every stream (shutdown).
    func finishAll() {
        for subscriber in subscribers.values {
            switch subscriber.delivery {
            case .stream(let continuation): continuation.finish()
            // Told where to resume, as a client that fell behind is.
            case .direct(let sink, _): sink.cutOff()
            case .holding: break   // its `attach` finds it gone and cuts it off
            }
        }
        subscribers.removeAll()
        presenceWatchers.removeAll()
        watching.removeAll()
        watchSequence.removeAll()
    }

    /// Sends an ephemeral frame (typing) to the members of a conversation, except one.
    func publish(_ frame: EventFrame, to conversationID: UUID, except excluded: UUID?) async {
        guard !subscribers.isEmpty, let audience = try? await membersOf(conversationID, before: lastID + 1) else { return }
        for (key, subscriber) in subscribers where audience.contains(subscriber.userID) && subscriber.userID != excluded {
            deliver(frame, to: key, subscriber)
        }
    }

    /// Sends an ephemeral frame (presence) to every other subscriber who shares a conversation
    /// of at most `limit` members with `subject`, and to those watching `subject` by name.
    func publish(_ frame: EventFrame, toPeersOf subject: UUID, inConversationsUpTo limit: Int) async {
        guard !subscribers.isEmpty else { return }
        let peers: Set<UUID>
        do {
            peers = try await Membership.peers(of: subject, inConversationsUpTo: limit, on: database())
        } catch {
            logger.warning("could not read who to tell about presence", metadata: ["error": .string(String(describing: error))])
            return
        }
        let watchers = presenceWatchers[subject] ?? []
        for (key, subscriber) in subscribers where peers.contains(subscriber.userID) || watchers.contains(key) {
            deliver(frame, to: key, subscriber)
        }
    }

    /// Makes `subscriber` watch the presence of `users` (replacing what it watched before),
    /// and sends it `snapshot`, their status now, after which changes follow. A list with a
    /// lower `sequence` than one already applied (asked for earlier, answered later) is ignored.
    func watchPresence(of users: Set<UUID>, subscriber key: UUID, snapshot: EventFrame, sequence: Int) {
        guard let subscriber = subscribers[key], sequence > (watchSequence[key] ?? 0) else { return }
        watchSequence[key] = sequence
        unwatchPresence(key)
        if !users.isEmpty {
            watching[key] = users
            for user in users { presenceWatchers[user, default: []].insert(key) }
        }
        deliver(snapshot, to: key, subscriber)
    }

    private func unwatchPresence(_ key: UUID) {
        for user in watching.removeValue(forKey: key) ?? [] {
            presenceWatchers[user]?.remove(key)
            if presenceWatchers[user]?.isEmpty == true { presenceWatchers[user] = nil }
        }
    }

    /// Sends an ephemeral frame to every subscriber (heartbeats).
    func broadcast(_ frame: EventFrame) {
        for (id, subscriber) in subscribers {
            deliver(frame, to: id, subscriber)
        }
    }

    private func pump() async {
        guard started, !idle else { return }
        if pumping {
            pumpAgain = true
            return
        }
        pumping = true
        defer { pumping = false }
        repeat {
            pumpAgain = false
            do {
                while true {
                    let batch: [CommittedEvent]
                    if let held = recent?.recentEvents(after: lastID, limit: Self.batchSize) {
                        batch = held
                    } else {
                        batch = try await EventLog.events(after: lastID, limit: Self.batchSize, on: database())
                    }
                    for event in batch {
                        try await dispatch(event)
                        resumePositionWaiters()
                    }
                    // A short batch was the end of the log (anything newer brings its own notify).
                    if batch.count < Self.batchSize { break }
                }
            } catch {
                logger.error("event hub could not read events", metadata: ["error": .string(String(describing: error))])
                return
            }
        } while pumpAgain
    }

    static let batchSize = 500

    private func dispatch(_ event: CommittedEvent) async throws {
        let id = event.id
        // The position moves only once the event is delivered: a subscriber that registers
        // while this method waits below must get it live, not by replay.
        defer { lastID = id }
        let frame = EventFrame(event)
        if let only = event.visibleTo {
            for (key, subscriber) in subscribers where subscriber.userID == only {
                deliver(frame, to: key, subscriber)
            }
            return
        }
        var audience = try await membersOf(event.conversationID, before: id)
        switch EventAudience.change(event) {
        case .joined(let user):
            audience.insert(user)
            members[event.conversationID] = audience
        case .left(let user):
            // The one who left hears of it, then nothing more.
            members[event.conversationID]?.remove(user)
        case .ended:
            members[event.conversationID] = []
        case nil:
            break
        }
        for (key, subscriber) in subscribers where audience.contains(subscriber.userID) {
            deliver(frame, to: key, subscriber)
        }
    }

    private func deliver(_ frame: EventFrame, to key: UUID, _ subscriber: Subscriber) {
        switch subscriber.delivery {
        case .stream(let continuation):
            if case .dropped = continuation.yield(frame) {
                // Too far behind: end the stream; the connection closes with its resume point.
                subscribers.removeValue(forKey: key)
                continuation.finish()
            }
        case .direct(let sink, let floor):
            if let id = frame.id, id <= floor { return }
            // A sink that cannot keep up has cut its connection off (with its resume point).
            if !sink.write(frame) { unsubscribe(key) }
        case .holding:
            // The stored list, not the caller's copy (several frames may go to one subscriber
            // in a row); taken out while it grows, so it is not copied for every frame.
            guard case .holding(var held) = subscribers[key]?.delivery else { return }
            guard held.count < bufferSize else {
                // Too far behind while replaying: `attach` says so, and the connection closes.
                unsubscribe(key)
                return
            }
            subscribers[key]?.delivery = .holding([])
            held.append(frame)
            subscribers[key]?.delivery = .holding(held)
        }
    }

    /// The members of a conversation just before event `eventID`, from the cache or else
    /// reconstructed (`EventAudience`); `dispatch` then applies each member event as it
    /// delivers it.
    ///
    /// The load awaits the database, and the actor serves others meanwhile: a `dispatch` may
    /// load and update the same conversation's entry in that time. The entry found there is
    /// then the current one and wins; the set loaded here was exact only for `eventID`. (An
    /// ephemeral publish that overwrote it once dropped a member who had just joined from every
    /// later live event of that conversation.) No event of the conversation was dispatched
    /// while the entry stayed empty, so a set stored after the load is still exact at the
    /// hub's position, unless a catch-up moved that position meanwhile (`epoch`).
    private func membersOf(_ conversationID: UUID, before eventID: Int) async throws -> Set<UUID> {
        if let known = members[conversationID] { return known }
        let epoch = self.epoch
        let set = try await loadMembers(conversationID, eventID, database())
        if let known = members[conversationID] { return known }
        if epoch == self.epoch { members[conversationID] = set }
        return set
    }
}
