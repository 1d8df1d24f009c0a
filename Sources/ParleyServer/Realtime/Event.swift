import Fluent
import SQLKit
import Vapor

/// One entry of the replayable log clients sync from. Written in the same transaction as the
/// change it describes, so a change and its event commit together or not at all.
final class Event: Model, @unchecked Sendable {
    static let schema = "events"

    // identity
    @ID(custom: "id", generatedBy: .database) var id: Int?

    // data
    @Field(key: "conversation_id") var conversationID: UUID
    /// When set, only this user may see the event (their read marker, for example).
    @OptionalField(key: "user_id") var userID: UUID?
    @Field(key: "type") var type: String
    /// The event's data as JSON text.
    @Field(key: "payload") var payload: String

    // timestamps
    @Field(key: "created_at") var createdAt: Date

    init() {}

    init(conversationID: UUID, userID: UUID?, type: EventType, payload: String, at now: Date) {
        self.conversationID = conversationID
        self.userID = userID
        self.type = type.rawValue
        self.payload = payload
        self.createdAt = now
    }
}

/// An event as the hub and replay read it: decoded straight from a row, without Fluent's
/// model machinery (the hub reads every event).
struct StoredEvent: Decodable, Sendable {
    let id: Int
    let conversation_id: UUID
    let user_id: UUID?
    let type: String
    let payload: String
    let created_at: Date

    static let columns: SQLQueryString = "id, conversation_id, user_id, type, payload, created_at"
}

enum EventType: String, Codable, Sendable, CaseIterable {
    case conversationCreated = "conversation.created"
    case conversationUpdated = "conversation.updated"
    case conversationDeleted = "conversation.deleted"
    case memberJoined = "member.joined"
    case memberLeft = "member.left"
    case memberRoleChanged = "member.role_changed"
    case messageCreated = "message.created"
    case messageEdited = "message.edited"
    case messageDeleted = "message.deleted"
    case reactionAdded = "reaction.added"
    case reactionRemoved = "reaction.removed"
    case readUpdated = "read.updated"
}

enum EventLog {
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Taken before inserting events on PostgreSQL, held until commit: event ids are then
    /// handed out and committed in the same order, so readers that follow the log by id never
    /// skip an event that commits late. (SQLite has one writer, so the order holds already.)
    static let orderLockKey = 0x7061_726C_6579

    /// Appends an event; call it inside the transaction that makes the change.
    static func record(_ type: EventType, conversationID: UUID, visibleTo userID: UUID? = nil,
                       payload: some Encodable, at now: Date, on db: any Database) async throws {
        let json = String(decoding: try encoder.encode(payload), as: UTF8.self)
        if let sql = db as? any SQLDatabase, sql.dialect.name == "postgresql" {
            try await sql.raw("SELECT pg_advisory_xact_lock(\(unsafeRaw: String(orderLockKey)))").run()
            // Delivered to every node's listener when this transaction commits.
            try await sql.raw("SELECT pg_notify('parley_events', '')").run()
        }
        guard let sql = db as? any SQLDatabase else {
            return try await Event(conversationID: conversationID, userID: userID, type: type, payload: json, at: now).create(on: db)
        }
        // Plain SQL: this runs for every change, and Fluent's model reflection costs more than the insert.
        try await sql.raw("""
            INSERT INTO events (conversation_id, user_id, type, payload, created_at)
            VALUES (\(bind: conversationID), \(bind: userID), \(bind: type.rawValue), \(bind: json), \(bind: now))
            """).run()
    }
}
