import Fluent
import NIOConcurrencyHelpers
import Vapor

/// `GET /v1/events` (WebSocket) and `GET /v1/events/stream` (Server-Sent Events): every event
/// the caller may see, replayed from `since` (or SSE's `Last-Event-ID`) and then live, with no
/// gap and no duplicate across the switch.
struct RealtimeController: RouteCollection {
    let hub: EventHub
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        let events = routes.grouped(authentication).grouped("events")
        events.get("stream", use: stream)
        events.webSocket(maxFrameSize: .init(integerLiteral: 1 << 16), onUpgrade: socket)
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
        let subscription = try await hub.subscribe(userID: principal.userID)
        let hub = self.hub
        let db = request.db
        var headers = HTTPHeaders()
        headers.contentType = HTTPMediaType(type: "text", subType: "event-stream", parameters: ["charset": "utf-8"])
        headers.replaceOrAdd(name: .cacheControl, value: "no-store")
        // Tell nginx not to buffer the stream.
        headers.replaceOrAdd(name: "X-Accel-Buffering", value: "no")
        let response = Response(status: .ok, headers: headers)
        response.body = .init(managedAsyncStream: { writer in
            defer { Task { await hub.unsubscribe(subscription.id) } }
            try await writer.write(.buffer(ByteBuffer(string: "retry: 1000\n\n")))
            if let since {
                try await Self.replay(userID: principal.userID, after: since, upTo: subscription.startID, on: db) { frame in
                    try await writer.write(.buffer(ByteBuffer(string: frame.sse())))
                }
            }
            for await frame in subscription.frames {
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
        ws.pingInterval = .seconds(20)
        let task = Task {
            var lastSent = since ?? 0
            do {
                let subscription = try await hub.subscribe(userID: principal.userID)
                if let since {
                    try await Self.replay(userID: principal.userID, after: since, upTo: subscription.startID, on: db) { frame in
                        try await ws.send(frame.json())
                        lastSent = frame.id ?? lastSent
                    }
                } else {
                    lastSent = subscription.startID
                }
                for await frame in subscription.frames {
                    try await ws.send(frame.json())
                    if let id = frame.id { lastSent = id }
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
        ws.onClose.whenComplete { _ in task.cancel() }
    }

    /// Stored events after `since` up to `end` that the user may see, oldest first.
    static func replay(userID: UUID, after since: Int, upTo end: Int, on db: any Database,
                       _ emit: (EventFrame) async throws -> Void) async throws {
        var cursor = since
        while cursor < end {
            let batch = try await Event.query(on: db)
                .filter(\.$id > cursor)
                .filter(\.$id <= end)
                .group(.or) { or in
                    or.filter(\.$userID == userID)
                    or.group(.and) { and in
                        and.filter(\.$userID == nil)
                        and.filter(.sql(embed: "\(ident: "conversation_id") IN (SELECT conversation_id FROM memberships WHERE user_id = \(bind: userID))"))
                    }
                }
                .sort(\.$id)
                .limit(500)
                .all()
            guard let last = batch.last?.id else { return }
            for event in batch { try await emit(EventFrame(event)) }
            cursor = last
        }
    }
}

/// Starts the hub with the server, sends heartbeats, and stops them on shutdown.
struct EventHubLifecycle: LifecycleHandler {
    let hub: EventHub
    let heartbeat: Duration
    let clock: AppClock
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(hub: EventHub, heartbeat: Duration, clock: AppClock) {
        self.hub = hub
        self.heartbeat = heartbeat
        self.clock = clock
    }

    func didBootAsync(_ application: Application) async throws {
        try await hub.start()
        let hub = self.hub, heartbeat = self.heartbeat, clock = self.clock
        task.withLockedValue {
            $0 = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: heartbeat)
                    await hub.broadcast(.heartbeat(at: clock.now()))
                }
            }
        }
    }

    func shutdownAsync(_ application: Application) async {
        task.withLockedValue { $0?.cancel() }
        await hub.finishAll()
    }
}
