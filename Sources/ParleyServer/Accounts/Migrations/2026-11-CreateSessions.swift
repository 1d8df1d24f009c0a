import Fluent
import SQLKit

struct CreateSessions: AsyncMigration {
    var name: String { "2026-11-25-CreateSessions" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Session.schema)
            .id()
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("kind", .string, .required)
            .field("token_hash", .string)
            .field("expires_at", .datetime, .required)
            .field("revoked_at", .datetime)
            .field("revoked_reason", .string)
            .field("created_at", .datetime)
            .unique(on: "token_hash", name: "uq_sessions_token_hash")
            .create()
        try await database.schema(RefreshToken.schema)
            .id()
            .field("session_id", .uuid, .required, .references(Session.schema, .id, onDelete: .cascade))
            .field("token_hash", .string, .required)
            .field("expires_at", .datetime, .required)
            .field("rotated_at", .datetime)
            .field("replaced_by", .uuid)
            .field("created_at", .datetime)
            .unique(on: "token_hash", name: "uq_refresh_tokens_token_hash")
            .create()
        if let sql = database as? any SQLDatabase {
            try await sql.create(index: "ix_sessions_user_id").on(Session.schema).column("user_id").run()
            try await sql.create(index: "ix_refresh_tokens_session_id").on(RefreshToken.schema).column("session_id").run()
        }
    }

    func revert(on database: any Database) async throws {
        try await database.schema(RefreshToken.schema).delete()
        try await database.schema(Session.schema).delete()
    }
}
