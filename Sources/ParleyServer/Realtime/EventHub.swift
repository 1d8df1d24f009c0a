import Fluent
import SQLKit
import Vapor

/// One frame of the event stream, as sent over WebSocket and SSE.
/// Stored events carry their `id`; ephemeral frames (heartbeat) have none.
struct EventFrame: Sendable {
    let id: Int?
    let type: String
    let conversationID: String?
    /// The event's payload, already JSON.
    let data: String
    let at: Date

    /// The frame as JSON, built once however many connections it goes to.
    let text: String

    init(id: Int?, type: String, conversationID: String?, data: String, at: Date) {
        self.id = id
        self.type = type
        self.conversationID = conversationID
        self.data = data
        self.at = at
        self.text = Self.encode(id: id, type: type, conversationID: conversationID, data: data, at: at)
    }

    init(_ event: Event) {
        self.init(id: event.id, type: event.type, conversationID: event.conversationID.wire, data: event.payload, at: event.createdAt)
    }

    init(_ event: StoredEvent) {
        self.init(id: event.id, type: event.type, conversationID: event.conversation_id.wire, data: event.payload, at: event.created_at)
    }

    /// For frames without an `id` that move the client's cursor (`resync_required`): the SSE
    /// `id:` line, so `EventSource` resumes from here.
    var resumeID: Int?

    static func heartbeat(at now: Date) -> EventFrame {
        EventFrame(id: nil, type: "heartbeat", conversationID: nil, data: "{}", at: now)
    }

    /// The client's cursor is older than the retention window (or unknown here): refetch
    /// state over REST, then continue from `since`, which this stream continues after.
    static func resyncRequired(from since: Int, at now: Date) -> EventFrame {
        var frame = EventFrame(id: nil, type: "resync_required", conversationID: nil, data: #"{"since":\#(since)}"#, at: now)
        frame.resumeID = since
        return frame
    }

    /// `{id, type, conversation_id, data, at}` as one line of JSON.
    func json() -> String { text }

    private static func encode(id: Int?, type: String, conversationID: String?, data: String, at: Date) -> String {
        var out = "{"
        if let id { out += "\"id\":\(id)," }
        out += "\"type\":" + quoted(type)
        if let conversationID { out += ",\"conversation_id\":" + quoted(conversationID) }
        out += ",\"data\":" + data
        out += ",\"at\":" + quoted(at.formatted(.iso8601))
        return out + "}"
    }

    /// The frame as a Server-Sent Event; `id:` lets EventSource resume with Last-Event-ID.
    func sse() -> String {
        ((id ?? resumeID).map { "id: \($0)\n" } ?? "") + "event: \(type)\ndata: \(json())\n\n"
    }

    private static func quoted(_ text: String) -> String {
        var out = ""
        JSONLogHandler.append(string: text, to: &out)
        return out
    }
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

    private struct Subscriber {
        let userID: UUID
        let continuation: AsyncStream<EventFrame>.Continuation
    }

    private let database: @Sendable () throws -> any Database
    private let bufferSize: Int
    private let logger: Logger
    private var lastID = 0
    private var started = false
    private var subscribers: [UUID: Subscriber] = [:]
    /// Conversation → member ids, loaded on first use and kept current by member events.
    private var members: [UUID: Set<UUID>] = [:]
    private var pumping = false
    private var pumpAgain = false
    /// Set while nobody listens: the hub then reads nothing and re-reads its position when
    /// the next subscriber arrives.
    private var idle = true

    init(database: @escaping @Sendable () throws -> any Database, bufferSize: Int, logger: Logger) {
        self.database = database
        self.bufferSize = bufferSize
        self.logger = logger
    }

    /// Takes the current end of the log as the starting point. Idempotent.
    func start() async throws {
        guard !started else { return }
        lastID = try await Self.maxEventID(on: database())
        started = true
        idle = subscribers.isEmpty
    }

    static func maxEventID(on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase else { return 0 }
        struct Row: Decodable { let last: Int? }
        return try await sql.raw("SELECT MAX(id) AS last FROM events").first(decoding: Row.self)?.last ?? 0
    }

    /// New events were committed; read and deliver them.
    nonisolated func notify() {
        Task { await self.pump() }
    }

    func subscribe(userID: UUID) async throws -> Subscription {
        try await start()
        // Nothing was read while nobody listened: catch up on the position (and forget
        // memberships that may have changed meanwhile) before registering. Subscribers that
        // arrive together share one catch-up, and none registers until it is done, so no
        // stale position is handed out or written back.
        while idle {
            if let catchUp {
                try await catchUp.value
            } else {
                let task = Task { try await self.catchUpPosition() }
                catchUp = task
                try await task.value
            }
        }
        let id = UUID()
        let (stream, continuation) = AsyncStream<EventFrame>.makeStream(bufferingPolicy: .bufferingOldest(bufferSize))
        subscribers[id] = Subscriber(userID: userID, continuation: continuation)
        continuation.onTermination = { [weak self] _ in
            Task { await self?.unsubscribe(id) }
        }
        return Subscription(id: id, startID: lastID, frames: stream)
    }

    private var catchUp: Task<Void, any Error>?

    private func catchUpPosition() async throws {
        defer { catchUp = nil }
        let position = try await Self.maxEventID(on: database())
        // Pumps do nothing while idle, so nothing moved the position meanwhile.
        lastID = position
        members.removeAll()
        idle = false
        notify()
    }

    func unsubscribe(_ id: UUID) {
        subscribers.removeValue(forKey: id)?.continuation.finish()
        if subscribers.isEmpty { idle = true }
    }

    var subscriberCount: Int { subscribers.count }

    /// Ends every stream (shutdown).
    func finishAll() {
        for subscriber in subscribers.values { subscriber.continuation.finish() }
        subscribers.removeAll()
    }

    /// Sends an ephemeral frame (typing) to the members of a conversation, except one.
    func publish(_ frame: EventFrame, to conversationID: UUID, except excluded: UUID?) async {
        guard !subscribers.isEmpty, let audience = try? await membersOf(conversationID, before: lastID + 1) else { return }
        for (key, subscriber) in subscribers where audience.contains(subscriber.userID) && subscriber.userID != excluded {
            deliver(frame, to: key, subscriber)
        }
    }

    /// Sends an ephemeral frame (presence) to every other subscriber who shares a conversation
    /// with `subject`.
    func publish(_ frame: EventFrame, toPeersOf subject: UUID) async {
        guard !subscribers.isEmpty else { return }
        let peers: Set<UUID>
        do {
            peers = try await Presence.peers(of: subject, on: database())
        } catch {
            logger.warning("could not read who to tell about presence", metadata: ["error": .string(String(describing: error))])
            return
        }
        for (key, subscriber) in subscribers where peers.contains(subscriber.userID) {
            deliver(frame, to: key, subscriber)
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
                    guard let sql = try database() as? any SQLDatabase else { return }
                    let batch = try await sql.raw(
                        "SELECT \(StoredEvent.columns) FROM events WHERE id > \(bind: lastID) ORDER BY id LIMIT \(unsafeRaw: String(Self.batchSize))"
                    ).all(decoding: StoredEvent.self)
                    for event in batch { try await dispatch(event) }
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

    private func dispatch(_ event: StoredEvent) async throws {
        let id = event.id
        // The position moves only once the event is delivered: a subscriber that registers
        // while this method waits below must get it live, not by replay.
        defer { lastID = id }
        let frame = EventFrame(event)
        if let only = event.user_id {
            for (key, subscriber) in subscribers where subscriber.userID == only {
                deliver(frame, to: key, subscriber)
            }
            return
        }
        var audience = try await membersOf(event.conversation_id, before: id)
        let subject = Self.subject(of: event.payload)
        switch event.type {
        case EventType.memberJoined.rawValue:
            if let subject { audience.insert(subject) }
            members[event.conversation_id] = audience
        case EventType.memberLeft.rawValue:
            // The one who left hears of it, then nothing more.
            if let subject { members[event.conversation_id]?.remove(subject) }
        case EventType.conversationDeleted.rawValue:
            members[event.conversation_id] = []
        default:
            break
        }
        for (key, subscriber) in subscribers where audience.contains(subscriber.userID) {
            deliver(frame, to: key, subscriber)
        }
    }

    private func deliver(_ frame: EventFrame, to key: UUID, _ subscriber: Subscriber) {
        if case .dropped = subscriber.continuation.yield(frame) {
            // Too far behind: end the stream; the connection closes with its resume point.
            subscribers.removeValue(forKey: key)
            subscriber.continuation.finish()
        }
    }

    /// The members of a conversation just before event `eventID`, from the cache or else
    /// reconstructed exactly: the current members and the newest event id are read in one
    /// statement (one snapshot), then the member events from `eventID` up to that id are
    /// undone, newest first. `dispatch` then applies each member event as it delivers it.
    private func membersOf(_ conversationID: UUID, before eventID: Int) async throws -> Set<UUID> {
        if let known = members[conversationID] { return known }
        let db = try database()
        guard let sql = db as? any SQLDatabase else { return [] }
        struct Row: Decodable { let user_id: UUID?; let horizon: Int? }
        let rows = try await sql.raw("""
            SELECT m.user_id AS user_id, h.horizon AS horizon
            FROM (SELECT MAX(id) AS horizon FROM events) h
            LEFT JOIN memberships m ON m.conversation_id = \(bind: conversationID)
            """).all(decoding: Row.self)
        var set = Set(rows.compactMap(\.user_id))
        let horizon = rows.first?.horizon ?? eventID
        if horizon >= eventID {
            let later = try await sql.raw("""
                SELECT \(StoredEvent.columns) FROM events
                WHERE conversation_id = \(bind: conversationID) AND id >= \(bind: eventID) AND id <= \(bind: horizon)
                  AND type IN (\(bind: EventType.memberJoined.rawValue), \(bind: EventType.memberLeft.rawValue))
                ORDER BY id DESC
                """).all(decoding: StoredEvent.self)
            for event in later {
                guard let subject = Self.subject(of: event.payload) else { continue }
                if event.type == EventType.memberJoined.rawValue { set.remove(subject) } else { set.insert(subject) }
            }
        }
        members[conversationID] = set
        return set
    }

    /// The user a member event is about.
    static func subject(of json: String) -> UUID? {
        struct Payload: Decodable { let user_id: String? }
        guard let payload = try? JSONDecoder().decode(Payload.self, from: Data(json.utf8)) else { return nil }
        return payload.user_id.flatMap(UUID.init(uuidString:))
    }
}
