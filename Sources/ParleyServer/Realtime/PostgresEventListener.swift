import FluentPostgresDriver
import NIOConcurrencyHelpers
import PostgresNIO
import SQLKit
import Vapor

/// Carries "events were committed" between nodes that share one PostgreSQL database.
///
/// Every transaction that records events also runs `pg_notify('parley_events', '')`, which
/// PostgreSQL delivers to every listener when (and only if) the transaction commits. Each node
/// holds one connection that LISTENs and tells its hub to read; the hub then reads the events
/// themselves from the table, after the last id it delivered. When the listening connection
/// drops, notifications sent meanwhile are lost, so after every (re)connect the hub reads once
/// anyway and catches up from its last id.
///
/// The same connection listens on `parley_presence`, where nodes tell each other who is
/// online (see `Presence`); after a reconnect this node says hello so the others repeat theirs.
/// And on `parley_ephemeral`, where nodes pass frames that are not stored (`EphemeralBus`).
final class PostgresEventListener: LifecycleHandler, Sendable {
    static let channel = "parley_events"
    static let presenceChannel = "parley_presence"

    private let configuration: PostgresConnection.Configuration
    private let hub: EventHub
    private let presence: Presence
    private let ephemeral: EphemeralBus
    private let signals: SignalBus
    private let logger: Logger
    private let state = NIOLockedValueBox<(task: Task<Void, Never>?, connection: PostgresConnection?)>((nil, nil))
    private let listening = NIOLockedValueBox(false)

    /// Whether both channels are being listened to right now.
    var isListening: Bool { listening.withLockedValue { $0 } }

    init(configuration: PostgresConnection.Configuration, hub: EventHub, presence: Presence, ephemeral: EphemeralBus,
         signals: SignalBus, logger: Logger) {
        self.signals = signals
        self.configuration = configuration
        self.hub = hub
        self.presence = presence
        self.ephemeral = ephemeral
        self.logger = logger
    }

    func didBootAsync(_ application: Application) async throws {
        let eventLoop = application.eventLoopGroup.any()
        let task = Task { [self] in
            var attempt = 0
            while !Task.isCancelled {
                do {
                    let connection = try await PostgresConnection.connect(on: eventLoop, configuration: configuration, id: 0, logger: logger).get()
                    state.withLockedValue { $0.connection = connection }
                    attempt = 0
                    let hub = self.hub, presence = self.presence, ephemeral = self.ephemeral, signals = self.signals
                    let listening = self.listening
                    // Every way out closes the connection, even when cancelled before it
                    // listens (postgres-nio asserts on a connection freed while open).
                    let closeConnection = { [state, listening] in
                        listening.withLockedValue { $0 = false }
                        state.withLockedValue { $0.connection = nil }
                        try? await connection.close()
                    }
                    do {
                    try await connection.listen(on: Self.channel) { notifications in
                        try await connection.listen(on: Self.presenceChannel) { presenceNotes in
                          try await connection.listen(on: EphemeralBus.channel) { ephemeralNotes in
                           try await connection.listen(on: SignalBus.channel) { signalNotes in
                            try await withThrowingTaskGroup(of: Void.self) { group in
                                group.addTask {
                                    // Signals sent while we were not listening are lost: look again at everything.
                                    signals.fireAll()
                                    for try await note in signalNotes { signals.receive(note.payload) }
                                }
                                group.addTask {
                                    for try await note in ephemeralNotes { await ephemeral.receive(note.payload) }
                                }
                                group.addTask {
                                    // Anything committed while we were not listening.
                                    hub.notify()
                                    for try await _ in notifications { hub.notify() }
                                }
                                group.addTask {
                                    listening.withLockedValue { $0 = true }
                                    await presence.announceAll(hello: true)
                                    let decoder = JSONDecoder()
                                    for try await note in presenceNotes {
                                        guard let batch = try? decoder.decode(PresenceBatch.self, from: Data(note.payload.utf8)) else { continue }
                                        await presence.receive(batch)
                                    }
                                }
                                // Any sequence ending means the connection is gone: reconnect.
                                try await group.next()
                                group.cancelAll()
                            }
                           }
                          }
                        }
                    }
                    } catch {
                        await closeConnection()
                        throw error
                    }
                    await closeConnection()
                } catch {
                    if Task.isCancelled { break }
                    attempt += 1
                    logger.warning("event listener lost its PostgreSQL connection; reconnecting",
                                   metadata: ["attempt": .stringConvertible(attempt)])
                    // Back off before reconnecting: 0.1 s, doubling, at most 5 s.
                    try? await Task.sleep(for: .milliseconds(min(5_000, 100 << min(attempt, 6))))
                }
            }
        }
        state.withLockedValue { $0.task = task }
    }

    /// Sends this node's presence batches to the others, through the pool.
    static func presenceSender(databases: Databases, eventLoops: any EventLoopGroup, logger: Logger)
        -> @Sendable (PresenceBatch) async throws -> Void
    {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return { batch in
            guard let sql = databases.database(logger: logger, on: eventLoops.any()) as? any SQLDatabase else { return }
            let payload = String(decoding: try encoder.encode(batch), as: UTF8.self)
            try await sql.raw("SELECT pg_notify(\(bind: presenceChannel), \(bind: payload))").run()
        }
    }

    func shutdownAsync(_ application: Application) async {
        let (task, connection) = state.withLockedValue { ($0.task, $0.connection) }
        task?.cancel()
        try? await connection?.close()
        await task?.value
    }
}
