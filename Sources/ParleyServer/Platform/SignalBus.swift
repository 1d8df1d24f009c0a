import Fluent
import Foundation
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// Named "look again" signals between nodes: a feature that changed shared state (the model
/// registry's stages) tells every node, this one included, to read it again. On PostgreSQL a
/// signal is `pg_notify('parley_signals', name)`, which every node's listener hears; when the
/// listener (re)connects it fires every handler once, since signals sent meanwhile are lost.
/// With one node (SQLite) a signal calls this node's handlers directly.
final class SignalBus: Sendable {
    static let channel = "parley_signals"

    private let handlers = NIOLockedValueBox<[String: [@Sendable () async -> Void]]>([:])
    private let remote = NIOLockedValueBox<(@Sendable (String) async throws -> Void)?>(nil)
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Calls `handler` whenever `name` is signalled on any node.
    func on(_ name: String, _ handler: @escaping @Sendable () async -> Void) {
        handlers.withLockedValue { $0[name, default: []].append(handler) }
    }

    /// Sends through PostgreSQL's NOTIFY from now on (set in `configure` on PostgreSQL).
    func connect(_ send: @escaping @Sendable (String) async throws -> Void) {
        remote.withLockedValue { $0 = send }
    }

    /// Tells every node that `name` changed; returns once this node's handlers have run.
    func signal(_ name: String) async {
        for handler in handlers.withLockedValue({ $0[name] ?? [] }) { await handler() }
        guard let send = remote.withLockedValue({ $0 }) else { return }
        do {
            try await send(name)
        } catch {
            logger.warning("could not signal other nodes", metadata: ["signal": .string(name), "error": .string(String(describing: error))])
        }
    }

    /// A signal heard from the database (possibly this node's own: handlers only look again).
    func receive(_ name: String) {
        fire(name)
    }

    /// Every handler once: after the listener (re)connects.
    func fireAll() {
        for handler in handlers.withLockedValue({ $0.values.flatMap { $0 } }) { Task { await handler() } }
    }

    private func fire(_ name: String) {
        for handler in handlers.withLockedValue({ $0[name] ?? [] }) { Task { await handler() } }
    }

    static func postgresSender(databases: Databases, eventLoops: any EventLoopGroup, logger: Logger) -> @Sendable (String) async throws -> Void {
        { name in
            guard let sql = databases.database(logger: logger, on: eventLoops.any()) as? any SQLDatabase else { return }
            try await sql.raw("SELECT pg_notify(\(bind: channel), \(bind: name))").run()
        }
    }
}

struct SignalBusKey: StorageKey {
    typealias Value = SignalBus
}
