import Fluent
import Foundation
import SQLKit
import Vapor

/// Who is online, away or offline, from the event connections they hold.
///
/// Each node counts its own connections: a user is `online` while one of them is, `away`
/// while all of them say so (a WebSocket client sends `{"type":"presence","status":"away"}`
/// when its person is idle), and `offline` when the last closes. Changes are coalesced before
/// anyone hears of them: going offline waits `grace` (a client that reconnects within it,
/// the common flap, costs nothing), and one user's announcements are at least a second
/// apart, however often a client toggles. On PostgreSQL each node sends its changes to the
/// others with `pg_notify('parley_presence', …)` and a liveness beat with every heartbeat; a
/// node not heard from for three heartbeats is dropped and its users go offline. Every node
/// combines all nodes' views (the best status wins) and, only when the combined status
/// changes, tells the subscribers who share a conversation of at most `pushLimit` members with
/// the user, and those who subscribed to the user by name (`watch`).
///
/// Pushing through every shared conversation would cost a channel of N members N²/2 frames
/// as its members connect (each one's `online` to everyone connected before), so in bigger
/// conversations a client asks for the people it shows, as Slack's clients do.
actor Presence {
    struct Options: Sendable {
        var enabled = true
        var grace: Duration = .seconds(10)
        var minimumInterval: Duration = .seconds(1)
        /// Other nodes are dropped after this long without a word.
        var nodeTimeout: Duration = .seconds(60)
        /// Changes are pushed through conversations of at most this many members.
        var pushLimit = 100
        /// Users one connection may subscribe to by name.
        static let watchLimit = 500
    }

    /// Why a list of people to watch was refused: `code` and `message` for the `user_ids` field.
    struct WatchListError: Error {
        let code: String
        let message: String
    }

    /// The user ids of a watch list (`presence.subscribe`, `GET /v1/presence?user_ids=`): at
    /// most `Options.watchLimit`, each a user id.
    nonisolated static func watchList(_ texts: [some StringProtocol]) throws(WatchListError) -> Set<UUID> {
        guard texts.count <= Options.watchLimit else {
            throw WatchListError(code: "too_many", message: "at most \(Options.watchLimit) user ids")
        }
        var users = Set<UUID>()
        for text in texts {
            guard let id = UUID(wire: text.trimmingCharacters(in: .whitespaces)) else {
                throw WatchListError(code: "invalid", message: "must be user ids")
            }
            users.insert(id)
        }
        return users
    }

    nonisolated let nodeID = UUID.timeOrdered()
    nonisolated let options: Options
    private let hub: EventHub
    private let clock: AppClock
    /// Sends this node's batches to the other nodes; nil on a single node (SQLite).
    private var bus: (@Sendable (PresenceBatch) async throws -> Void)?
    private let logger: Logger

    /// user → connection → the status that connection reports.
    private var connections: [UUID: [UUID: PresenceStatus]] = [:]
    /// This node's status per user, as last announced.
    private var announced: [UUID: PresenceStatus] = [:]
    private var announcedAt: [UUID: Date] = [:]
    private var scheduled: Set<UUID> = []
    /// Other nodes' statuses, and when each was last heard from.
    private var nodes: [UUID: (seen: Date, users: [UUID: PresenceStatus])] = [:]
    /// The combined status per user, as last told to subscribers (offline users are absent).
    private var combined: [UUID: PresenceStatus] = [:]

    init(options: Options, hub: EventHub, clock: AppClock, logger: Logger) {
        self.options = options
        self.hub = hub
        self.clock = clock
        self.logger = logger
    }

    func connectBus(_ send: @escaping @Sendable (PresenceBatch) async throws -> Void) {
        bus = send
    }

    // MARK: connections on this node

    /// A connection opened: its user is online (unless it later says away).
    func connect(userID: UUID) -> UUID {
        let connection = UUID.timeOrdered()
        guard options.enabled else { return connection }
        connections[userID, default: [:]][connection] = .online
        changed(userID)
        return connection
    }

    /// A WebSocket reported its person idle (`away`) or back (`online`).
    func set(_ status: PresenceStatus, connection: UUID, userID: UUID) {
        guard options.enabled, status != .offline, connections[userID]?[connection] != nil else { return }
        connections[userID]?[connection] = status
        changed(userID)
    }

    func disconnect(_ connection: UUID, userID: UUID) {
        guard options.enabled, connections[userID]?.removeValue(forKey: connection) != nil else { return }
        if connections[userID]?.isEmpty == true { connections[userID] = nil }
        changed(userID)
    }

    private func local(_ userID: UUID) -> PresenceStatus {
        connections[userID]?.values.max() ?? .offline
    }

    /// Schedules one announcement for the user; changes until then fold into it.
    private func changed(_ userID: UUID) {
        guard !scheduled.contains(userID) else { return }
        let now = clock.now()
        var delay: TimeInterval = 0
        if local(userID) == .offline { delay = Self.seconds(options.grace) }
        if let last = announcedAt[userID] { delay = max(delay, last.timeIntervalSince(now) + Self.seconds(options.minimumInterval)) }
        scheduled.insert(userID)
        // The deadline is fixed now, on the application's clock (tests move it by hand).
        let deadline = now.addingTimeInterval(delay), clock = self.clock
        Task {
            // Coming online (with no recent announcement) is said at once.
            if delay > 0 { await clock.sleepUntil(deadline) }
            await flush(userID)
        }
    }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        TimeInterval(duration.components.seconds) + TimeInterval(duration.components.attoseconds) / 1e18
    }

    private func flush(_ userID: UUID) async {
        scheduled.remove(userID)
        let status = local(userID)
        guard status != (announced[userID] ?? .offline) else { return }
        announced[userID] = status == .offline ? nil : status
        announcedAt[userID] = clock.now()
        await recombine(userID)
        if let bus {
            do {
                try await bus(PresenceBatch(node: nodeID, users: [userID.wire: status]))
            } catch {
                logger.warning("could not announce presence to other nodes", metadata: ["error": .string(String(describing: error))])
            }
        }
    }

    // MARK: other nodes

    /// A batch from another node (this node's own, echoed by PostgreSQL, are ignored).
    func receive(_ batch: PresenceBatch) async {
        guard options.enabled, batch.node != nodeID else { return }
        var entry = nodes[batch.node] ?? (seen: clock.now(), users: [:])
        entry.seen = clock.now()
        var touched: [UUID] = []
        for (raw, status) in batch.users {
            guard let userID = UUID(wire: raw) else { continue }
            entry.users[userID] = status == .offline ? nil : status
            touched.append(userID)
        }
        nodes[batch.node] = entry
        for userID in touched { await recombine(userID) }
        if batch.hello == true { await announceAll() }
    }

    /// Tells the other nodes everything this node knows of its own users, in batches small
    /// enough for a NOTIFY payload (8,000 bytes).
    func announceAll(hello: Bool = false) async {
        guard options.enabled, let bus else { return }
        var batches: [PresenceBatch] = []
        var current = PresenceBatch(node: nodeID, users: [:], hello: hello ? true : nil)
        for (userID, status) in announced {
            if current.users.count == 100 {
                batches.append(current)
                current = PresenceBatch(node: nodeID, users: [:])
            }
            current.users[userID.wire] = status
        }
        batches.append(current)
        for batch in batches {
            try? await bus(batch)
        }
    }

    /// Called with every heartbeat: says this node is alive and drops nodes that went quiet
    /// (a killed node never says goodbye), taking their users offline.
    func tick() async {
        guard options.enabled else { return }
        if let bus { try? await bus(PresenceBatch(node: nodeID, users: [:])) }
        let cutoff = clock.now().addingTimeInterval(-TimeInterval(options.nodeTimeout.components.seconds))
        for (node, entry) in nodes where entry.seen < cutoff {
            nodes[node] = nil
            logger.notice("dropped a silent node's presence", metadata: ["node": .string(node.wire), "users": .stringConvertible(entry.users.count)])
            for userID in entry.users.keys { await recombine(userID) }
        }
    }

    // MARK: combining and telling

    private func recombine(_ userID: UUID) async {
        var status = announced[userID] ?? .offline
        for entry in nodes.values {
            if let other = entry.users[userID], other > status { status = other }
        }
        guard status != (combined[userID] ?? .offline) else { return }
        combined[userID] = status == .offline ? nil : status
        let now = clock.now()
        let frame = EventFrame(id: nil, type: "presence", conversationID: nil,
                               data: #"{"user_id":"\#(userID.wire)","status":"\#(status.rawValue)"}"#, at: now)
        await hub.publish(frame, toPeersOf: userID, inConversationsUpTo: options.pushLimit)
    }

    /// Subscribes one hub subscriber to the presence of `users` (replacing what it watched),
    /// and sends it their current status, offline included, in one `presence.snapshot` frame.
    /// The caller has checked that it may see them; `sequence` orders one connection's lists.
    func watch(_ users: Set<UUID>, subscriber: UUID, sequence: Int) async {
        guard options.enabled else { return }
        let entries = users.sorted { $0.wire < $1.wire }.map { userID in
            #"{"user_id":"\#(userID.wire)","status":"\#((combined[userID] ?? .offline).rawValue)"}"#
        }
        let snapshot = EventFrame(id: nil, type: "presence.snapshot", conversationID: nil,
                                  data: #"{"users":[\#(entries.joined(separator: ","))]}"#, at: clock.now())
        await hub.watchPresence(of: users, subscriber: subscriber, snapshot: snapshot, sequence: sequence)
    }

    /// The combined status of the given users; offline ones are left out.
    func statuses(of users: Set<UUID>) -> [UUID: PresenceStatus] {
        combined.filter { users.contains($0.key) }
    }
}
