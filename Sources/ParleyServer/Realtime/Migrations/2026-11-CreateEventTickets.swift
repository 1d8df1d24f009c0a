import Fluent
import SQLKit
import Vapor

struct CreateEventTickets: AsyncMigration {
    var name: String { "2026-11-25-CreateEventTickets" }

    func prepare(on database: any Database) async throws {
        try await database.schema(EventTicket.schema)
            .id()
            .field("token_hash", .string, .required)
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("session_id", .uuid, .required, .references(Session.schema, .id, onDelete: .cascade))
            .field("expires_at", .datetime, .required)
            .field("used_at", .datetime)
            .unique(on: "token_hash", name: "uq_event_tickets_token_hash")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(EventTicket.schema).delete()
    }
}
