import Fluent
import Foundation
import SQLKit

/// The owner of the `events` table's SQL: appending (through `Outbox`), reading after an id,
/// and the narrower reads live delivery and replay need. Every feature writes events through
/// an `Outbox` and reads them here; no other file queries the table.
enum EventLog {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    /// Taken before inserting events on PostgreSQL, held until commit: event ids are then
    /// handed out and committed in the same order, so readers that follow the log by id never
    /// skip an event that commits late. (SQLite has one writer, so the order holds already.)
    static let orderLockKey = 0x7061_726C_6579

    /// Takes the order lock now (PostgreSQL; nothing on SQLite), held until commit. The
    /// transaction's first event still takes it (again, which PostgreSQL allows) and queues
    /// the notification.
    static func holdOrder(on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase, sql.dialect.name == "postgresql" else { return }
        try await sql.raw("SELECT pg_advisory_xact_lock(\(unsafeRaw: String(orderLockKey)))").run()
    }

    /// Inserts one event and returns its id. On PostgreSQL the transaction's first event also
    /// takes the order lock and queues the notification every node's listener gets on commit,
    /// in the same statement: the lock is held from there through the commit, so one round
    /// trip fewer under it. The row's id (its default, `nextval`) is taken after the lock,
    /// since the row to insert is only produced once the subquery that locks has run.
    static func append(type: EventType, conversationID: UUID, visibleTo userID: UUID?, payload: String, at now: Date,
                       firstInTransaction: Bool, on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let id: Int }
        // Plain SQL: this runs for every change, and Fluent's model reflection costs more than the insert.
        let query: SQLQueryString
        if firstInTransaction, sql.dialect.name == "postgresql" {
            query = """
                INSERT INTO events (conversation_id, user_id, type, payload, created_at)
                SELECT \(bind: conversationID), \(bind: userID), \(bind: type.rawValue), \(bind: payload), \(bind: now)
                FROM (SELECT pg_advisory_xact_lock(\(unsafeRaw: String(orderLockKey))), pg_notify('parley_events', '')) AS ordered
                RETURNING id
                """
        } else {
            query = """
                INSERT INTO events (conversation_id, user_id, type, payload, created_at)
                VALUES (\(bind: conversationID), \(bind: userID), \(bind: type.rawValue), \(bind: payload), \(bind: now))
                RETURNING id
                """
        }
        guard let row = try await sql.raw(query).first(decoding: Row.self) else { throw StorageError.notSQL }
        return row.id
    }

    /// The id of the newest event (0 for an empty log).
    static func lastID(on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase else { return 0 }
        struct Row: Decodable { let last: Int? }
        return try await sql.raw("SELECT MAX(id) AS last FROM events").first(decoding: Row.self)?.last ?? 0
    }

    /// Events after `id`, oldest first: how a subscriber that must not miss one catches up.
    static func events(after id: Int, limit: Int = 500, on db: any Database) async throws -> [CommittedEvent] {
        try await select("id > \(bind: id) ORDER BY id LIMIT \(unsafeRaw: String(limit))", on: db)
    }

    /// Member joins and leaves of one conversation with ids in `range`, newest first.
    static func memberChanges(in conversationID: UUID, ids range: ClosedRange<Int>, types: [EventType],
                              on db: any Database) async throws -> [CommittedEvent] {
        try await select("""
            conversation_id = \(bind: conversationID) AND id >= \(bind: range.lowerBound) AND id <= \(bind: range.upperBound)
              AND type IN (\(binds: types.map(\.rawValue))) ORDER BY id DESC
            """, on: db)
    }

    /// Events of the given types after `id` whose payload names `userID` as `user_id`, oldest
    /// first. (The LIKE only narrows; callers decode the payload to decide.)
    static func events(naming userID: UUID, types: [EventType], after id: Int, on db: any Database) async throws -> [CommittedEvent] {
        try await select("""
            id > \(bind: id) AND type IN (\(binds: types.map(\.rawValue)))
              AND payload LIKE \(bind: "%\"user_id\":\"\(userID.wire)\"%") ORDER BY id
            """, on: db)
    }

    /// Up to `limit` events in `(after, through]` that are either addressed to `userID` or
    /// belong to a conversation in `conversations` (an SQL condition on `conversation_id`),
    /// oldest first.
    static func events(for userID: UUID, after id: Int, through end: Int, conversations: SQLQueryString, limit: Int,
                       on db: any Database) async throws -> [CommittedEvent] {
        let condition: SQLQueryString = """
            id > \(bind: id) AND id <= \(bind: end)
              AND (user_id = \(bind: userID) OR (user_id IS NULL AND (
            """
        return try await select(condition + conversations + "))) ORDER BY id LIMIT \(unsafeRaw: String(limit))", on: db)
    }

    /// Appends many events at once, outside the request path (`parley seed`).
    static func appendBatch(_ rows: [(conversationID: UUID, type: EventType, payload: String, at: Date)],
                            on db: any Database) async throws {
        guard !rows.isEmpty, let sql = db as? any SQLDatabase else { return }
        if sql.dialect.name == "postgresql" {
            try await sql.raw("SELECT pg_advisory_xact_lock(\(unsafeRaw: String(orderLockKey))), pg_notify('parley_events', '')").run()
        }
        var insert = sql.insert(into: Event.schema).columns("conversation_id", "type", "payload", "created_at")
        for row in rows {
            insert = insert.values(SQLBind(row.conversationID), SQLBind(row.type.rawValue), SQLBind(row.payload), SQLBind(row.at))
        }
        try await insert.run()
    }

    private struct Row: Decodable {
        let id: Int
        let conversation_id: UUID
        let user_id: UUID?
        let type: String
        let payload: String
        let created_at: Date

        var event: CommittedEvent {
            CommittedEvent(id: id, type: EventType(type), conversationID: conversation_id, visibleTo: user_id,
                           payload: payload, createdAt: created_at)
        }
    }

    private static func select(_ condition: SQLQueryString, on db: any Database) async throws -> [CommittedEvent] {
        guard let sql = db as? any SQLDatabase else { return [] }
        let head: SQLQueryString = "SELECT id, conversation_id, user_id, type, payload, created_at FROM events WHERE "
        return try await sql.raw(head + condition).all(decoding: Row.self).map(\.event)
    }
}
