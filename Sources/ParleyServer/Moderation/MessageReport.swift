import Fluent
import Foundation
import SQLKit

/// A member's report of a message, open until a moderator decides about the message. The
/// owner of the `message_reports` table's SQL.
final class MessageReport: Model, @unchecked Sendable {
    static let schema = "message_reports"

    @ID(key: .id) var id: UUID?
    @Field(key: "message_id") var messageID: UUID
    @Field(key: "conversation_id") var conversationID: UUID
    @Field(key: "reporter_id") var reporterID: UUID
    @Field(key: "reason") var reason: String
    @Field(key: "created_at") var createdAt: Date
    @OptionalField(key: "resolved_at") var resolvedAt: Date?

    init() {}

    init(messageID: UUID, conversationID: UUID, reporterID: UUID, reason: String, at now: Date) {
        self.id = UUID.timeOrdered()
        self.messageID = messageID
        self.conversationID = conversationID
        self.reporterID = reporterID
        self.reason = reason
        self.createdAt = now
    }

    /// Adds a report; false when this member reported this message already (open or not).
    static func add(_ report: MessageReport, on tx: any Database) async throws -> Bool {
        guard let sql = tx as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let id: UUID }
        return try await sql.raw("""
            INSERT INTO message_reports (id, message_id, conversation_id, reporter_id, reason, created_at)
            VALUES (\(bind: report.id), \(bind: report.messageID), \(bind: report.conversationID), \(bind: report.reporterID),
                    \(bind: report.reason), \(bind: report.createdAt))
            ON CONFLICT (message_id, reporter_id) DO NOTHING RETURNING id
            """).first(decoding: Row.self) != nil
    }

    /// Messages with open reports, oldest report first.
    static func openMessageIDs(limit: Int, on db: any Database) async throws -> [UUID] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let message_id: UUID }
        return try await sql.raw("""
            SELECT message_id FROM message_reports WHERE resolved_at IS NULL GROUP BY message_id ORDER BY MIN(created_at)
            LIMIT \(unsafeRaw: String(limit))
            """).all(decoding: Row.self).map(\.message_id)
    }

    /// The open reports of some messages.
    static func open(for messageIDs: [UUID], on db: any Database) async throws -> [MessageReport] {
        guard !messageIDs.isEmpty else { return [] }
        return try await MessageReport.query(on: db).filter(\.$messageID ~~ messageIDs).filter(\.$resolvedAt == nil)
            .sort(\.$createdAt).all()
    }

    /// Closes a message's open reports (a moderator decided).
    static func resolve(messageID: UUID, at now: Date, on tx: any Database) async throws {
        try await MessageReport.query(on: tx).filter(\.$messageID == messageID).filter(\.$resolvedAt == nil)
            .set(\.$resolvedAt, to: now).update()
    }
}
