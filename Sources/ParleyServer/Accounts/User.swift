import Fluent
import SQLKit
import Vapor

final class User: Model, @unchecked Sendable {
    static let schema = "users"

    /// `moderator`s decide about held, flagged and reported messages; administrators may do
    /// everything a moderator may.
    enum Role: String, Codable, Sendable, CaseIterable {
        case user, moderator, admin

        var moderates: Bool { self != .user }
    }
    enum Kind: String, Codable, Sendable, CaseIterable { case human, assistant }

    // identity
    @ID(key: .id) var id: UUID?
    /// Lower-case, 3-32 of `[a-z0-9_.-]`; unique.
    @Field(key: "handle") var handle: String

    // data
    @Field(key: "display_name") var displayName: String
    /// Lower-case; unique when present.
    @OptionalField(key: "email") var email: String?
    @Field(key: "password_hash") var passwordHash: String
    @Enum(key: "role") var role: Role
    @Enum(key: "kind") var kind: Kind
    @OptionalChild(for: \.$user) var profile: Profile?

    // timestamps
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    init(id: UUID? = nil, handle: String, displayName: String, email: String?, passwordHash: String,
         role: Role = .user, kind: Kind = .human) {
        self.id = id
        self.handle = handle
        self.displayName = displayName
        self.email = email
        self.passwordHash = passwordHash
        self.role = role
        self.kind = kind
    }
}

extension User {
    static func find(handle: String, on db: any Database) async throws -> User? {
        try await User.query(on: db).filter(\.$handle == handle.lowercased()).first()
    }

    static func find(email: String, on db: any Database) async throws -> User? {
        try await User.query(on: db).filter(\.$email == email.lowercased()).first()
    }
}

extension User {
    /// People whose handle or display name starts with `prefix` (case-insensitive), by
    /// handle, after the handle `cursor`.
    static func directory(matching prefix: String?, after cursor: String?, limit: Int, on db: any Database) async throws -> [User] {
        var query = User.query(on: db)
        if let q = prefix?.trimmingCharacters(in: .whitespaces).lowercased(), !q.isEmpty {
            let pattern = LikePattern.escape(q) + "%"
            query = query.group(.or) { or in
                or.filter(.sql(embed: "LOWER(\(ident: "handle")) LIKE \(bind: pattern)"))
                or.filter(.sql(embed: "LOWER(\(ident: "display_name")) LIKE \(bind: pattern)"))
            }
        }
        if let cursor { query = query.filter(\.$handle > cursor) }
        return try await query.sort(\.$handle).limit(limit).all()
    }

    /// The handles of `ids` (unknown ids are left out).
    static func handles(of ids: Set<UUID>, on db: any Database) async throws -> [UUID: String] {
        guard !ids.isEmpty else { return [:] }
        let users = try await User.query(on: db).filter(\.$id ~~ Array(ids)).field(\.$id).field(\.$handle).all()
        return Dictionary(users.compactMap { user in user.id.map { ($0, user.handle) } }, uniquingKeysWith: { first, _ in first })
    }

    /// Creates the user an assistant speaks as (kind `assistant`, no password that can ever
    /// match) and its profile, in the caller's transaction.
    static func createAssistant(id: UUID, handle: String, displayName: String, on tx: any Database) async throws -> User {
        let user = User(id: id, handle: handle, displayName: displayName, email: nil, passwordHash: "!", role: .user, kind: .assistant)
        do {
            try await user.create(on: tx)
        } catch let error as any DatabaseError where error.isConstraintFailure {
            throw AccountError.accountExists([FieldError(field: "handle", code: "taken", message: "is already taken")])
        }
        try await Profile(userID: id).create(on: tx)
        return user
    }

    /// A user with their profile loaded.
    static func withProfile(_ id: UUID, on db: any Database) async throws -> User? {
        try await User.query(on: db).filter(\.$id == id).with(\.$profile).first()
    }
}
