import Fluent

struct CreateUsers: AsyncMigration {
    var name: String { "2026-11-25-CreateUsers" }

    func prepare(on database: any Database) async throws {
        try await database.schema(User.schema)
            .id()
            .field("handle", .string, .required)
            .field("display_name", .string, .required)
            .field("email", .string)
            .field("password_hash", .string, .required)
            .field("role", .string, .required)
            .field("kind", .string, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .unique(on: "handle", name: "uq_users_handle")
            .unique(on: "email", name: "uq_users_email")
            .create()
        try await database.schema(Profile.schema)
            .id()
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("bio", .string, .required)
            .field("time_zone", .string)
            .field("updated_at", .datetime)
            .unique(on: "user_id", name: "uq_profiles_user_id")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Profile.schema).delete()
        try await database.schema(User.schema).delete()
    }
}
