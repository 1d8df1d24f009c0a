import Fluent

/// Which messages notify a member (all, mentions, nothing; null: the conversation kind's default).
struct AddMembershipNotify: AsyncMigration {
    var name: String { "2026-12-02-AddMembershipNotify" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Membership.schema).field("notify", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Membership.schema).deleteField("notify").update()
    }
}
