import Fluent
import Foundation
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// A durable subscription to committed domain events: a feature that must act on every event
/// of some types exactly once, even across crashes and on many nodes, follows the event log
/// with a cursor of its own (a row of `event_cursors`, this file owning the table's SQL).
///
/// Each batch of events after the cursor goes to the feature's planner, which reads what it
/// needs and returns the writes the batch calls for. Those run in a write transaction that
/// also moves the cursor by compare-and-set: what the feature writes and the cursor's move
/// commit together or not at all, and of several nodes reading the same batch one wins and
/// the others read on from where it left off. A batch that calls for no writes moves the
/// follower on in memory only (after a restart it is read again and again calls for none), so
/// the common case costs no transaction. This node's commits wake it at once; other nodes'
/// commits are found by polling.
final class LogFollower: LifecycleHandler, Sendable {
    /// The writes a batch calls for, made in the transaction that moves the cursor.
    typealias Writes = @Sendable (_ tx: any Database, _ outbox: Outbox) async throws -> Void
    /// Reads what a batch needs (outside any transaction) and returns its writes, or nil.
    typealias Planner = @Sendable (_ events: [CommittedEvent], _ db: any Database) async throws -> Writes?

    let name: String
    private let types: Set<EventType>
    private let database: @Sendable () throws -> any Database
    private let writes: WriteGate
    private let domainEvents: DomainEvents
    private let planner: Planner
    private let logger: Logger
    private let pollInterval: Duration
    private let watch = LogWatch()
    /// How far this node has read (possibly past the durable cursor, over batches that called
    /// for nothing) and the durable cursor as it last saw it; nil: read the cursor again.
    private let progress = NIOLockedValueBox<(position: Int, durable: Int)?>(nil)

    init(name: String, types: Set<EventType>, database: @escaping @Sendable () throws -> any Database, writes: WriteGate,
         domainEvents: DomainEvents, logger: Logger, pollInterval: Duration = .seconds(1), planner: @escaping Planner) {
        self.name = name
        self.types = types
        self.database = database
        self.writes = writes
        self.domainEvents = domainEvents
        self.logger = logger
        self.pollInterval = pollInterval
        self.planner = planner
    }

    func didBootAsync(_ application: Application) async throws {
        watch.start("follower:" + name, domainEvents: domainEvents, types: types, pollInterval: pollInterval, logger: logger) {
            [self] woken in
            do {
                return try await followOnce(woken: woken)
            } catch {
                progress.withLockedValue { $0 = nil }
                throw error
            }
        }
    }

    func shutdownAsync(_ application: Application) async {
        await watch.stop()
    }

    /// Handles one batch after the cursor. Returns whether it moved on (there may be more).
    /// `woken`: this node's commits woke it (see `DomainEvents.events(after:limit:on:woken:)`).
    @discardableResult
    func followOnce(woken: Bool = false) async throws -> Bool {
        let db = try database()
        let known: (position: Int, durable: Int)
        if let saved = progress.withLockedValue({ $0 }) {
            known = saved
        } else {
            let cursor = try await Self.cursor(name, on: db)
            known = (cursor, cursor)
            progress.withLockedValue { $0 = known }
        }
        let events = try await domainEvents.events(after: known.position, on: db, woken: woken)
        guard let through = events.last?.id else { return false }
        let wanted = events.filter { types.contains($0.type) }
        guard !wanted.isEmpty, let writes = try await planner(wanted, db) else {
            progress.withLockedValue { $0 = (through, known.durable) }
            return true
        }
        let name = self.name
        let moved: Bool = try await db.writeTransaction(self.writes) { tx, outbox in
            guard try await Self.advance(name, from: known.durable, to: through, on: tx) else { return false }
            try await writes(tx, outbox)
            return true
        }
        // Lost to another node: read its position again and go on from there.
        progress.withLockedValue { $0 = moved ? (through, through) : nil }
        return true
    }

    // MARK: The cursors (the `event_cursors` table's SQL)

    /// The cursor's position. A feature creates its cursor in its migration (at the end of the
    /// log then); one that is missing starts at the end of the log when first read.
    static func cursor(_ name: String, on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let position: Int }
        if let row = try await sql.raw("SELECT position FROM event_cursors WHERE name = \(bind: name)").first(decoding: Row.self) {
            return row.position
        }
        let last = try await EventLog.lastID(on: db)
        try await sql.raw("INSERT INTO event_cursors (name, position) VALUES (\(bind: name), \(bind: last)) ON CONFLICT DO NOTHING").run()
        return try await sql.raw("SELECT position FROM event_cursors WHERE name = \(bind: name)").first(decoding: Row.self)?.position ?? last
    }

    /// Moves the cursor from `old` to `new`; false when another node moved it first.
    static func advance(_ name: String, from old: Int, to new: Int, on db: any Database) async throws -> Bool {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let name: String }
        return try await sql.raw("""
            UPDATE event_cursors SET position = \(bind: new) WHERE name = \(bind: name) AND position = \(bind: old) RETURNING name
            """).first(decoding: Row.self) != nil
    }
}
