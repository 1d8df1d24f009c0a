import Fluent
import Foundation
import SQLKit
import Vapor

/// Who did what to what, and why: moderators' decisions, role changes, model promotions and
/// rollbacks. Written in the same transaction as the change it records, never edited. The
/// owner of the `audit_entries` table's SQL.
enum AuditLog {
    struct Entry: Content, Equatable {
        var id: String
        var actorID: String?
        var action: String
        var subject: String
        var reason: String?
        var createdAt: Date

        enum CodingKeys: String, CodingKey {
            case id, action, subject, reason
            case actorID = "actor_id"
            case createdAt = "created_at"
        }
    }

    /// Appends an entry: `subject` names the thing acted on (`message:<id>`, `user:<id>`,
    /// `model:moderation@3`).
    static func record(actor: UUID?, action: String, subject: String, reason: String?, at now: Date, on tx: any Database) async throws {
        guard let sql = tx as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("""
            INSERT INTO audit_entries (id, actor_id, action, subject, reason, created_at)
            VALUES (\(bind: UUID.timeOrdered()), \(bind: actor), \(bind: action), \(bind: subject), \(bind: reason), \(bind: now))
            """).run()
    }

    /// The newest entries first, before `before` (a time) when given, optionally for one
    /// action's prefix (`moderation.`).
    static func entries(prefix: String?, before: Date?, limit: Int, on db: any Database) async throws -> [Entry] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable {
            let id: UUID, actor_id: UUID?, action: String, subject: String, reason: String?, created_at: Date
        }
        var condition: SQLQueryString = "1 = 1"
        if let prefix { condition = condition + " AND action LIKE \(bind: LikePattern.escape(prefix) + "%")" }
        if let before { condition = condition + " AND created_at < \(bind: before)" }
        return try await sql.raw("""
            SELECT id, actor_id, action, subject, reason, created_at FROM audit_entries WHERE \(condition)
            ORDER BY created_at DESC, id LIMIT \(unsafeRaw: String(limit))
            """).all(decoding: Row.self).map {
            Entry(id: $0.id.wire, actorID: $0.actor_id?.wire, action: $0.action, subject: $0.subject, reason: $0.reason,
                  createdAt: $0.created_at)
        }
    }
}

struct CreateAuditEntries: AsyncMigration {
    var name: String { "2026-12-07-CreateAuditEntries" }

    func prepare(on database: any Database) async throws {
        try await database.schema("audit_entries")
            .id()
            .field("actor_id", .uuid)
            .field("action", .string, .required)
            .field("subject", .string, .required)
            .field("reason", .string)
            .field("created_at", .datetime, .required)
            .create()
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("CREATE INDEX ix_audit_entries_created ON audit_entries (created_at)").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("audit_entries").delete()
    }
}
