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
    let writes: WriteGate
    let connections: ConnectionLimiter
    let chat: ChatDependencies
    let presence: Presence
    /// Origins besides the server's own allowed to open cookie-authenticated WebSockets.
    var allowedOrigins: [String] = []
    /// Typing goes to members on every node.
    let ephemeral: EphemeralBus

    func boot(routes: any RoutesBuilder) throws {
        routes.grouped(authentication).post("events", "ticket", use: ticket)
        routes.grouped(authentication).post("conversations", ":conversation_id", "typing", use: typing)
        let events = routes.grouped(TicketAuthenticator(clock: clock, writes: writes)).grouped(authentication).grouped("events")
        events.get("stream", use: stream)
        events.get(use: upgrade)
    }

    /// Tells the conversation's other members that the caller is typing (ephemeral: not
    /// stored, expires after 5 seconds unless repeated).
    @Sendable
    func typing(_ request: Request) async throws -> HTTPStatus {
        let principal = try request.principal()
        let id = try request.idParameter("conversation_id", orThrow: ConversationError.conversationNotFound)
        let access = try await chat.conversations(request.db).access(id, userID: principal.userID)
        _ = try access.requireMember()
        await Self.announceTyping(ephemeral, conversationID: access.conversationID, userID: principal.userID, now: clock.now())
        return .noContent
    }

    static let typingLifetime: TimeInterval = 5

    static func announceTyping(_ ephemeral: EphemeralBus, conversationID: UUID, userID: UUID, now: Date) async {
        let expires = now.addingTimeInterval(typingLifetime).formatted(.iso8601)
        let frame = EventFrame(id: nil, type: "typing", conversationID: conversationID.wire,
                               data: #"{"user_id":"\#(userID.wire)","expires_at":"\#(expires)"}"#, at: now)
        await ephemeral.publish(frame, to: conversationID, except: userID)
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

    /// Checks the request before upgrading it to a WebSocket, so a refusal is an ordinary
    /// problem response (422 for a bad `since`, 429 over the connection cap) rather than a
    /// dropped connection.
    @Sendable
    func upgrade(_ request: Request) async throws -> Response {
        let principal = try request.principal()
        // WebSockets have no CORS: a page on another site could open one with the user's
        // cookie (cross-site WebSocket hijacking). Cookie-authenticated upgrades must come
        // from this server's own origin or one the operator allowed; tokens are not ambient.
        if principal.method == .cookie, let origin = request.headers.first(name: .origin),
           !Self.originAllowed(origin, host: request.headers.first(name: .host), allowed: allowedOrigins) {
            throw ProblemError.forbidden("WebSockets authenticated by the session cookie must come from this server's own pages.",
                                         slug: "cross-origin-websocket")
        }
        _ = try Self.since(request)
        guard connections.hasRoom(for: principal.userID) else { throw ConnectionLimiter.tooMany }
        return request.webSocket(maxFrameSize: .init(integerLiteral: 1 << 16), onUpgrade: socket)
    }

    /// Whether a browser's `Origin` is the server's own (same host and port as `Host`) or
    /// one of the configured origins.
    static func originAllowed(_ origin: String, host: String?, allowed: [String]) -> Bool {
        let normalized = origin.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if allowed.contains(normalized) { return true }
        guard let url = URL(string: normalized), let originHost = url.host, let host = host?.lowercased() else { return false }
        let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
        let defaultPort = url.scheme == "https" ? 443 : 80
        if host == originAuthority || host == "\(originHost):\(defaultPort)" && url.port == nil { return true }
        // A Host without a port (some clients leave it out) names the host alone; cookies do
        // not tell ports apart either.
        return !host.contains(":") && host == originHost
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
        // The hub subscription, made at once so that a `presence.subscribe` sent right after
        // the handshake finds it. The hub holds live frames until the replay below is done,
        // then writes them to the socket itself.
        let subscribed = Task { try await hub.subscribeDirect(userID: principal.userID) }
        let subscribeCount = NIOLockedValueBox(0)
        ws.onText { ws, text in
            // Clients may send `{"type":"typing","conversation_id":"…"}`,
            // `{"type":"presence","status":"away"|"online"}` and
            // `{"type":"presence.subscribe","user_ids":[…]}`; anything else is ignored.
            struct Incoming: Decodable {
                let type: String; let conversation_id: String?; let status: PresenceStatus?; let user_ids: [String]?
            }
            guard let incoming = try? JSONDecoder().decode(Incoming.self, from: Data(text.utf8)) else { return }
            if incoming.type == "presence", let status = incoming.status {
                Task { await presence.set(status, connection: await connection.value, userID: principal.userID) }
                return
            }
            if incoming.type == "presence.subscribe" {
                // Numbered as they arrive: the checks run concurrently, and a list that finishes
                // them after a later one is not applied over it.
                let sequence = subscribeCount.withLockedValue { $0 += 1; return $0 }
                Task {
                    await Self.watchPresence(incoming.user_ids, for: principal.userID, subscription: subscribed,
                                             sequence: sequence, presence: presence, on: db, ws: ws)
                }
                return
            }
            guard incoming.type == "typing", let raw = incoming.conversation_id, let conversationID = UUID(wire: raw)
            else { return }
            Task {
                guard try await Membership.find(conversationID: conversationID, userID: principal.userID, on: db) != nil else { return }
                await Self.announceTyping(ephemeral, conversationID: conversationID, userID: principal.userID, now: clock.now())
            }
        }
        let limit = hub.bufferSize
        let task = Task {
            var lastSent = since ?? 0
            do {
                let subscription = try await subscribed.value
                lastSent = max(lastSent, subscription.startID)
                let floor = try await Self.replay(userID: principal.userID, since: since, upTo: subscription.startID, on: db) { frame in
                    try await ws.send(frame.json())
                    if let id = frame.id ?? frame.resumeID { lastSent = id }
                }
                // Live from here. A client that fell behind while it replayed (or stops
                // reading later) is told where to resume, and closed.
                let sink = WebSocketSink(ws, limit: limit, lastSent: lastSent)
                if await !hub.attach(subscription.id, sink: sink, floor: floor) { sink.cutOff() }
            } catch {
                try? await ws.close(code: .unexpectedServerError)
            }
        }
        ws.onClose.whenComplete { _ in
            task.cancel()
            slot.close()
            Task {
                if let subscription = try? await subscribed.value { await hub.unsubscribe(subscription.id) }
                await presence.disconnect(await connection.value, userID: principal.userID)
            }
        }
    }

    /// `presence.subscribe`: the connection hears of these users' presence (those who share a
    /// conversation with the caller; others are left out unsaid), starting with one
    /// `presence.snapshot` frame of their status now. It replaces the previous list; an empty
    /// one ends it. A list that is not user ids, or too long, is refused with an `error` frame
    /// and changes nothing.
    static func watchPresence(_ raw: [String]?, for userID: UUID, subscription: Task<EventHub.DirectSubscription, any Error>, sequence: Int,
                              presence: Presence, on db: any Database, ws: WebSocket) async {
        func refuse(_ code: String, _ message: String) async {
            let frame = #"{"type":"error","data":{"for":"presence.subscribe","field":"user_ids","code":"\#(code)","message":"\#(message)"}}"#
            try? await ws.send(frame)
        }
        guard let raw else { return await refuse("missing", "user_ids is required: a list of user ids") }
        let users: Set<UUID>
        do {
            users = try Presence.watchList(raw)
        } catch {
            return await refuse(error.code, error.message)
        }
        guard let subscription = try? await subscription.value,
              let visible = try? await Membership.sharing(with: userID, among: users, on: db) else { return }
        await presence.watch(visible, subscriber: subscription.id, sequence: sequence)
    }

    /// What an SSE connection sends: the events after `since` (replayed from the database up
    /// to the hub's position), then live frames from the hub; each event once, in id order.
    static func feed(userID: UUID, since: Int?, subscription: EventHub.Subscription, on db: any Database,
                     _ emit: (EventFrame) async throws -> Void) async throws {
        let floor = try await replay(userID: userID, since: since, upTo: subscription.startID, on: db, emit)
        for await frame in subscription.frames {
            if let id = frame.id, id <= floor { continue }
            try await emit(frame)
        }
    }

    /// The events after `since` up to the hub's position `startID`, from the database; a
    /// cursor the log can no longer serve gets one `resync_required` frame instead. Returns
    /// the floor below which live frames were seen already.
    static func replay(userID: UUID, since: Int?, upTo startID: Int, on db: any Database,
                       _ emit: (EventFrame) async throws -> Void) async throws -> Int {
        guard let since else { return startID }
        switch try await EventRetention.check(since: since, on: db) {
        case .stale:
            try await emit(.resyncRequired(from: startID, at: Date()))
            return startID
        case .replayable:
            try await EventReplay.replay(userID: userID, after: since, upTo: startID, on: db, emit)
            // Behind a load balancer a client may have seen, on another node, events this
            // node's hub has not reached yet: never send those twice.
            return max(startID, since)
        }
    }
}
