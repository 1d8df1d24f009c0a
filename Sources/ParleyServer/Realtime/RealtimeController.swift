import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// `GET /v1/events` (WebSocket) and `GET /v1/events/stream` (Server-Sent Events): every event
/// the caller may see, replayed from `since` (or SSE's `Last-Event-ID`) and then live, with no
/// gap and no duplicate across the switch.
struct RealtimeController: RouteCollection {
    let hub: EventHub
    let authentication: AuthenticationMiddleware
    let clock: AppClock
    let writes: Writes
    let connections: ConnectionLimiter
    let chat: ChatDependencies
    let presence: Presence

    func boot(routes: any RoutesBuilder) throws {
        routes.grouped(authentication).post("events", "ticket", use: ticket)
        routes.grouped(authentication).post("conversations", ":conversation_id", "typing", use: typing)
        let events = routes.grouped(TicketAuthenticator(clock: clock, writes: writes)).grouped(authentication).grouped("events")
        events.get("stream", use: stream)
        events.webSocket(maxFrameSize: .init(integerLiteral: 1 << 16), shouldUpgrade: admit, onUpgrade: socket)
    }

    /// Tells the conversation's other members that the caller is typing (ephemeral: not
    /// stored, expires after 5 seconds unless repeated).
    @Sendable
    func typing(_ request: Request) async throws -> HTTPStatus {
        let principal = try request.principal()
        let access = try await chat.conversations(request.db).access(request.parameters.get("conversation_id"), userID: principal.userID)
        _ = try access.requireMember()
        await Self.announceTyping(hub: hub, conversationID: access.conversationID, userID: principal.userID, now: clock.now())
        return .noContent
    }

    static let typingLifetime: TimeInterval = 5

    static func announceTyping(hub: EventHub, conversationID: UUID, userID: UUID, now: Date) async {
        let expires = now.addingTimeInterval(typingLifetime).formatted(.iso8601)
        let frame = EventFrame(id: nil, type: "typing", conversationID: conversationID.wire,
                               data: #"{"user_id":"\#(userID.wire)","expires_at":"\#(expires)"}"#, at: now)
        await hub.publish(frame, to: conversationID, except: userID)
    }

    /// A one-time ticket, valid 30 seconds, for `?ticket=` on the event endpoints.
    @Sendable
    func ticket(_ request: Request) async throws -> Response {
        let principal = try request.principal()
        let token = OpaqueToken.generate()
        let ticket = EventTicket(tokenHash: OpaqueToken.digest(token), userID: principal.userID, sessionID: principal.sessionID,
                                 expiresAt: clock.now().addingTimeInterval(EventTicket.lifetime))
        try await request.db.writeTransaction(writes) { tx in try await ticket.create(on: tx) }
        return try await TicketResponse(ticket: token, expiresIn: Int(EventTicket.lifetime)).encodeResponse(status: .created, for: request)
    }

    /// Refuses the upgrade (429) when the caller already holds the most connections allowed.
    @Sendable
    func admit(_ request: Request) -> EventLoopFuture<HTTPHeaders?> {
        let promise = request.eventLoop.makePromise(of: HTTPHeaders?.self)
        promise.completeWithTask {
            let principal = try request.principal()
            _ = try Self.since(request)
            guard connections.hasRoom(for: principal.userID) else { throw ConnectionLimiter.tooMany }
            return [:]
        }
        return promise.futureResult
    }

    /// The `since` cursor: `?since=` or, for EventSource reconnects, `Last-Event-ID`.
    static func since(_ request: Request) throws -> Int? {
        let raw = request.query[String.self, at: "since"] ?? request.headers.first(name: "Last-Event-ID")
        guard let raw else { return nil }
        guard let value = Int(raw.trimmingCharacters(in: .whitespaces)), value >= 0 else {
            throw ProblemError.validation(field: "since", code: "invalid", message: "must be an event id (a whole number ≥ 0)")
        }
        return value
    }

    @Sendable
    func stream(_ request: Request) async throws -> Response {
        let principal = try request.principal()
        let since = try Self.since(request)
        guard let slot = connections.open(for: principal.userID) else { throw ConnectionLimiter.tooMany }
        let subscription: EventHub.Subscription
        do {
            subscription = try await hub.subscribe(userID: principal.userID)
        } catch {
            slot.close()
            throw error
        }
        let hub = self.hub, presence = self.presence
        let db = request.db
        var headers = HTTPHeaders()
        headers.contentType = HTTPMediaType(type: "text", subType: "event-stream", parameters: ["charset": "utf-8"])
        headers.replaceOrAdd(name: .cacheControl, value: "no-store")
        // Tell nginx not to buffer the stream.
        headers.replaceOrAdd(name: "X-Accel-Buffering", value: "no")
        let response = Response(status: .ok, headers: headers)
        response.body = .init(managedAsyncStream: { writer in
            let connection = await presence.connect(userID: principal.userID)
            defer {
                slot.close()
                Task {
                    await hub.unsubscribe(subscription.id)
                    await presence.disconnect(connection, userID: principal.userID)
                }
            }
            try await writer.write(.buffer(ByteBuffer(string: "retry: 1000\n\n")))
            try await Self.feed(userID: principal.userID, since: since, subscription: subscription, on: db) { frame in
                try await writer.write(.buffer(ByteBuffer(string: frame.sse())))
            }
        })
        return response
    }

    @Sendable
    func socket(_ request: Request, _ ws: WebSocket) {
        guard let principal = request.auth.get(Principal.self) else {
            _ = ws.close(code: .policyViolation)
            return
        }
        let hub = self.hub
        let db = request.db
        let since: Int?
        do {
            since = try Self.since(request)
        } catch {
            _ = ws.close(code: .unacceptableData)
            return
        }
        guard let slot = connections.open(for: principal.userID) else {
            _ = ws.close(code: .policyViolation)
            return
        }
        ws.pingInterval = .seconds(20)
        let clock = self.clock, presence = self.presence
        // Presence knows this connection from the start; messages it sends are applied in order.
        let connection = Task { await presence.connect(userID: principal.userID) }
        ws.onText { _, text in
            // Clients may send `{"type":"typing","conversation_id":"…"}` and
            // `{"type":"presence","status":"away"|"online"}`; anything else is ignored.
            struct Incoming: Decodable { let type: String; let conversation_id: String?; let status: PresenceStatus? }
            guard let incoming = try? JSONDecoder().decode(Incoming.self, from: Data(text.utf8)) else { return }
            if incoming.type == "presence", let status = incoming.status {
                Task { await presence.set(status, connection: await connection.value, userID: principal.userID) }
                return
            }
            guard incoming.type == "typing", let raw = incoming.conversation_id, let conversationID = UUID(uuidString: raw)
            else { return }
            Task {
                guard try await Membership.find(conversationID: conversationID, userID: principal.userID, on: db) != nil else { return }
                await Self.announceTyping(hub: hub, conversationID: conversationID, userID: principal.userID, now: clock.now())
            }
        }
        let task = Task {
            var lastSent = since ?? 0
            do {
                let subscription = try await hub.subscribe(userID: principal.userID)
                lastSent = max(lastSent, subscription.startID)
                try await Self.feed(userID: principal.userID, since: since, subscription: subscription, on: db) { frame in
                    try await ws.send(frame.json())
                    if let id = frame.id ?? frame.resumeID { lastSent = id }
                }
                // The stream ended while the socket is open: this client fell behind. Say
                // where to resume, then close.
                if !ws.isClosed {
                    try? await ws.send(#"{"type":"resume","data":{"since":\#(lastSent)}}"#)
                    try? await ws.close(code: .unknown(4008))
                }
            } catch {
                try? await ws.close(code: .unexpectedServerError)
            }
        }
        ws.onClose.whenComplete { _ in
            task.cancel()
            slot.close()
            Task { await presence.disconnect(await connection.value, userID: principal.userID) }
        }
    }

    /// What every connection sends: the events after `since` (replayed from the database up
    /// to the hub's position), then live frames from the hub; each event once, in id order.
    /// A cursor the log can no longer serve gets one `resync_required` frame instead of the
    /// replay.
    static func feed(userID: UUID, since: Int?, subscription: EventHub.Subscription, on db: any Database,
                     _ emit: (EventFrame) async throws -> Void) async throws {
        var floor = subscription.startID
        if let since {
            switch try await EventRetention.check(since: since, on: db) {
            case .stale:
                try await emit(.resyncRequired(from: subscription.startID, at: Date()))
            case .replayable:
                try await replay(userID: userID, after: since, upTo: subscription.startID, on: db, emit)
                // Behind a load balancer a client may have seen, on another node, events this
                // node's hub has not reached yet: never send those twice.
                floor = max(floor, since)
            }
        }
        for await frame in subscription.frames {
            if let id = frame.id, id <= floor { continue }
            try await emit(frame)
        }
    }

    /// Stored events after `since` up to `end` that the user may see, oldest first, by the
    /// same rule as live delivery: an event goes to the members a conversation has when it
    /// happens. A member's own `member.joined` is their first event of it and their own
    /// `member.left` their last, so membership is followed through the range, starting from
    /// what it was at `since` (worked out from the user's own member events after it).
    static func replay(userID: UUID, after since: Int, upTo end: Int, on db: any Database,
                       _ emit: (EventFrame) async throws -> Void) async throws {
        guard since < end, let sql = db as? any SQLDatabase else { return }
        let joined = EventType.memberJoined.rawValue, left = EventType.memberLeft.rawValue
        // The user's own joins and leaves after `since` (the LIKE only narrows; the payload decides).
        struct Own: Decodable { let id: Int; let conversation_id: UUID; let type: String; let payload: String }
        let own = try await sql.raw("""
            SELECT id, conversation_id, type, payload FROM events
            WHERE id > \(bind: since) AND type IN (\(bind: joined), \(bind: left))
              AND payload LIKE \(bind: "%\"user_id\":\"\(userID.wire)\"%")
            ORDER BY id
            """).all(decoding: Own.self).filter { EventHub.subject(of: $0.payload) == userID }
        struct Current: Decodable { let conversation_id: UUID }
        var member: [UUID: Bool] = [:]
        for row in try await sql.raw("SELECT conversation_id FROM memberships WHERE user_id = \(bind: userID)").all(decoding: Current.self) {
            member[row.conversation_id] = true
        }
        var decided = Set<UUID>()
        for event in own where decided.insert(event.conversation_id).inserted {
            // The first own member event after `since` says what the user was before it.
            member[event.conversation_id] = event.type == left
        }
        let extra = Set(own.map(\.conversation_id))
        var scope: SQLQueryString = "conversation_id IN (SELECT conversation_id FROM memberships WHERE user_id = \(bind: userID))"
        if !extra.isEmpty {
            scope = scope + " OR conversation_id IN (" + extra.map { "\(bind: $0)" as SQLQueryString }.joined(separator: ", ") + ")"
        }
        var cursor = since
        while cursor < end {
            let head: SQLQueryString = """
                SELECT \(StoredEvent.columns) FROM events
                WHERE id > \(bind: cursor) AND id <= \(bind: end)
                  AND (user_id = \(bind: userID) OR (user_id IS NULL AND (
                """
            let tail: SQLQueryString = "))) ORDER BY id LIMIT 500"
            let batch = try await sql.raw(head + scope + tail).all(decoding: StoredEvent.self)
            guard let last = batch.last?.id else { return }
            for event in batch {
                if event.user_id != nil {
                    try await emit(EventFrame(event))
                    continue
                }
                let conversation = event.conversation_id
                let subject = event.type == joined || event.type == left ? EventHub.subject(of: event.payload) : nil
                if event.type == joined, subject == userID { member[conversation] = true }
                if member[conversation] == true { try await emit(EventFrame(event)) }
                if event.type == left, subject == userID { member[conversation] = false }
                if event.type == EventType.conversationDeleted.rawValue { member[conversation] = false }
            }
            cursor = last
        }
    }
}

/// Sends heartbeats (and presence liveness beats) while the application runs, and ends every
/// stream on shutdown.
struct EventHubLifecycle: LifecycleHandler {
    let hub: EventHub
    let presence: Presence
    let heartbeat: Duration
    let clock: AppClock
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(hub: EventHub, presence: Presence, heartbeat: Duration, clock: AppClock) {
        self.hub = hub
        self.presence = presence
        self.heartbeat = heartbeat
        self.clock = clock
    }

    func didBootAsync(_ application: Application) async throws {
        // The hub starts with its first subscriber: every command boots the application,
        // `migrate` on a fresh database included, before the events table exists.
        let hub = self.hub, presence = self.presence, heartbeat = self.heartbeat, clock = self.clock
        task.withLockedValue {
            $0 = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: heartbeat)
                    await hub.broadcast(.heartbeat(at: clock.now()))
                    await presence.tick()
                }
            }
        }
    }

    func shutdownAsync(_ application: Application) async {
        task.withLockedValue { $0?.cancel() }
        await hub.finishAll()
    }
}

/// Counts each user's open event connections on this node and refuses more than the cap.
final class ConnectionLimiter: Sendable {
    static let tooMany = ProblemError(.tooManyRequests, slug: "too-many-connections",
                                      detail: "Too many open event connections; close one first.",
                                      headers: ["Retry-After": "5"])

    let limit: Int
    private let counts = NIOLockedValueBox<[UUID: Int]>([:])

    init(limit: Int) {
        self.limit = limit
    }

    func hasRoom(for userID: UUID) -> Bool {
        counts.withLockedValue { ($0[userID] ?? 0) < limit }
    }

    /// Takes a slot, or nil when the user is at the cap.
    func open(for userID: UUID) -> Slot? {
        let taken = counts.withLockedValue { counts -> Bool in
            guard (counts[userID] ?? 0) < limit else { return false }
            counts[userID, default: 0] += 1
            return true
        }
        return taken ? Slot(limiter: self, userID: userID) : nil
    }

    fileprivate func release(_ userID: UUID) {
        counts.withLockedValue { counts in
            let left = (counts[userID] ?? 1) - 1
            counts[userID] = left > 0 ? left : nil
        }
    }

    /// One open connection; closing it twice releases once.
    final class Slot: Sendable {
        private let limiter: ConnectionLimiter
        private let userID: UUID
        private let closed = NIOLockedValueBox(false)

        fileprivate init(limiter: ConnectionLimiter, userID: UUID) {
            self.limiter = limiter
            self.userID = userID
        }

        func close() {
            let first = closed.withLockedValue { closed -> Bool in
                defer { closed = true }
                return !closed
            }
            if first { limiter.release(userID) }
        }
    }
}
