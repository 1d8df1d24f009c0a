import Fluent
import SQLKit

/// `email_digests`: who wants the e-mail digest and how far it has reported; and the cursor of
/// the follower that schedules digests.
struct CreateEmailDigests: AsyncMigration {
    var name: String { "2026-12-06-CreateEmailDigests" }

    func prepare(on database: any Database) async throws {
        try await database.schema(EmailDigestSettings.table)
            .field("user_id", .uuid, .identifier(auto: false), .references(User.schema, .id, onDelete: .cascade))
            .field("enabled", .bool, .required, .sql(.default(true)))
            .field("sent_through", .datetime)
            .create()
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("INSERT INTO event_cursors (name, position) SELECT 'email', COALESCE(MAX(id), 0) FROM events").run()
    }

    func revert(on database: any Database) async throws {
        if let sql = database as? any SQLDatabase { try await sql.raw("DELETE FROM event_cursors WHERE name = 'email'").run() }
        try await database.schema(EmailDigestSettings.table).delete()
    }
}
