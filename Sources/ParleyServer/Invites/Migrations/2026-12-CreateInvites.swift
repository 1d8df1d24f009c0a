import Fluent

/// `invites`: links that let people in, to a conversation or to the site.
struct CreateInvites: AsyncMigration {
    var name: String { "2026-12-02-CreateInvites" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Invite.table)
            .id()
            .field("token_hash", .string, .required)
            .field("conversation_id", .uuid, .references(Conversation.schema, .id, onDelete: .cascade))
            .field("created_by", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("max_uses", .int)
            .field("uses", .int, .required)
            .field("expires_at", .datetime)
            .field("revoked_at", .datetime)
            .field("created_at", .datetime, .required)
            .unique(on: "token_hash", name: "uq_invites_token_hash")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Invite.table).delete()
    }
}
