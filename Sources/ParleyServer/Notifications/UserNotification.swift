import Fluent
import Foundation
import SQLKit
import Vapor

/// One thing that needs a person's attention, and the owner of the `notifications` table's SQL.
/// (Named so as not to be Foundation's `Notification`.)
struct UserNotification: Sendable, Equatable {
    static let table = "notifications"

    enum Kind: String, Codable, Sendable {
        /// `@you`, or `@channel`/`@here` in a conversation you hear about.
        case mention
        /// A message in a direct conversation.
        case direct
        /// A reply in a thread you started or replied in.
        case threadReply = "thread_reply"
        /// Any message in a conversation you chose to hear everything from.
        case message
        /// An assistant asks you to approve a tool.
        case approval
    }

    var id: UUID
    var userID: UUID
    var kind: Kind
    var conversationID: UUID
    var messageID: UUID?
    var messageSeq: Int?
    var runID: UUID?
    var actorID: UUID?
    /// What it is about, once per person: `message:<id>` or `approval:<run>:<call>`.
    var source: String
    /// The start of the message as it was written (deleted messages show none when listed).
    var excerpt: String?
    var createdAt: Date
    var readAt: Date?

    // MARK: SQL

    /// Inserts the notifications that do not exist yet (per person and source); returns those it inserted.
    static func insert(_ notifications: [UserNotification], on db: any Database) async throws -> [UserNotification] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        var created: [UserNotification] = []
        struct Row: Decodable { let id: UUID }
        for n in notifications {
            let inserted = try await sql.raw("""
                INSERT INTO notifications (id, user_id, kind, conversation_id, message_id, message_seq, run_id, actor_id, source,
                                           excerpt, created_at)
                VALUES (\(bind: n.id), \(bind: n.userID), \(bind: n.kind.rawValue), \(bind: n.conversationID), \(bind: n.messageID),
                        \(bind: n.messageSeq), \(bind: n.runID), \(bind: n.actorID), \(bind: n.source), \(bind: n.excerpt),
                        \(bind: n.createdAt))
                ON CONFLICT DO NOTHING RETURNING id
                """).first(decoding: Row.self)
            if inserted != nil { created.append(n) }
        }
        return created
    }

    private struct Row: Decodable {
        let id: UUID, user_id: UUID, kind: String, conversation_id: UUID, message_id: UUID?, message_seq: Int?, run_id: UUID?
        let actor_id: UUID?, source: String, excerpt: String?, created_at: Date, read_at: Date?, deleted_at: Date?

        var notification: UserNotification? {
            guard let kind = Kind(rawValue: kind) else { return nil }
            return UserNotification(id: id, userID: user_id, kind: kind, conversationID: conversation_id, messageID: message_id,
                                    messageSeq: message_seq, runID: run_id, actorID: actor_id, source: source,
                                    excerpt: deleted_at == nil ? excerpt : nil, createdAt: created_at, readAt: read_at)
        }
    }

    /// A person's notifications, newest first, after the keyset cursor (created_at, id).
    static func page(of userID: UUID, unreadOnly: Bool, before cursor: (Date, UUID)?, limit: Int,
                     on db: any Database) async throws -> [UserNotification] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        var condition: SQLQueryString = "n.user_id = \(bind: userID)"
        if unreadOnly { condition = condition + " AND n.read_at IS NULL" }
        if let (at, id) = cursor {
            condition = condition + " AND (n.created_at < \(bind: at) OR (n.created_at = \(bind: at) AND n.id < \(bind: id)))"
        }
        // Joined to the message only to leave out the excerpt of one deleted since.
        let head: SQLQueryString = """
            SELECT n.id AS id, n.user_id AS user_id, n.kind AS kind, n.conversation_id AS conversation_id,
                   n.message_id AS message_id, n.message_seq AS message_seq, n.run_id AS run_id, n.actor_id AS actor_id,
                   n.source AS source, n.excerpt AS excerpt, n.created_at AS created_at, n.read_at AS read_at,
                   m.deleted_at AS deleted_at
            FROM notifications n LEFT JOIN messages m ON m.id = n.message_id
            WHERE
            """
        let tail: SQLQueryString = " ORDER BY n.created_at DESC, n.id DESC LIMIT \(unsafeRaw: String(limit))"
        return try await sql.raw(head + " " + condition + tail).all(decoding: Row.self).compactMap(\.notification)
    }

    /// Whether a person has unread notifications in a conversation up to a seq.
    static func hasUnread(of userID: UUID, in conversationID: UUID, throughSeq seq: Int, on db: any Database) async throws -> Bool {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw("""
            SELECT id FROM notifications WHERE user_id = \(bind: userID) AND conversation_id = \(bind: conversationID)
              AND message_seq <= \(bind: seq) AND read_at IS NULL LIMIT 1
            """).first() != nil
    }

    static func unreadCount(of userID: UUID, on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let n: Int }
        return try await sql.raw("SELECT COUNT(*) AS n FROM notifications WHERE user_id = \(bind: userID) AND read_at IS NULL")
            .first(decoding: Row.self)?.n ?? 0
    }

    /// Which of a person's unread notifications to mark read.
    enum Selection: Sendable {
        case ids([UUID])
        case all
        /// Those of a conversation up to a seq (the person read that far).
        case conversation(UUID, throughSeq: Int)
    }

    /// Marks notifications read; returns the ones it marked (id and conversation).
    static func markRead(_ selection: Selection, of userID: UUID, at now: Date, on db: any Database) async throws -> [(id: UUID, conversationID: UUID)] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        let which: SQLQueryString
        switch selection {
        case .ids(let ids):
            guard !ids.isEmpty else { return [] }
            which = "id IN (\(binds: ids))"
        case .all:
            which = "1 = 1"
        case .conversation(let conversationID, let seq):
            which = "conversation_id = \(bind: conversationID) AND message_seq <= \(bind: seq)"
        }
        struct Row: Decodable { let id: UUID; let conversation_id: UUID }
        let head: SQLQueryString = "UPDATE notifications SET read_at = \(bind: now) WHERE user_id = \(bind: userID) AND read_at IS NULL AND "
        return try await sql.raw(head + which + " RETURNING id, conversation_id").all(decoding: Row.self)
            .map { ($0.id, $0.conversation_id) }
    }
}
