import Fluent
import Vapor

/// `/v1/users`: the people directory, for pickers and profiles.
struct UserController: RouteCollection {
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        let signedIn = routes.grouped(authentication)
        signedIn.get("users", use: users)
        signedIn.get("users", ":user_id", use: user)
        signedIn.put("admin", "users", ":user_id", "role", use: setRole)
    }

    struct RoleRequest: Content {
        var role: String
        var reason: String?
    }

    /// An administrator gives someone a role (`user`, `moderator`, `admin`); the change is
    /// audited and takes effect on their next request.
    @Sendable
    func setRole(_ request: Request) async throws -> UserDTO {
        let principal = try request.principal()
        guard principal.role == User.Role.admin.rawValue else {
            throw ProblemError.forbidden("Only administrators may change roles.", slug: "not-an-administrator")
        }
        let id = try request.idParameter("user_id", orThrow: AccountError.userNotFound)
        let input = try request.decodeJSON(RoleRequest.self)
        guard let role = User.Role(rawValue: input.role) else {
            throw ProblemError.validation(field: "role", code: "invalid", message: "must be one of " + User.Role.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard let user = try await User.withProfile(id, on: request.db), user.kind == .human else { throw AccountError.userNotFound }
        guard let writes = request.application.storage[WriteGateKey.self] else { throw AccountError.userNotFound }
        if user.role != role {
            let now = Date()
            try await request.db.writeTransaction(writes) { tx, _ in
                try await User.query(on: tx).filter(\.$id == id).set(\.$role, to: role).update()
                try await AuditLog.record(actor: principal.userID, action: "user.role.\(role.rawValue)", subject: "user:\(id.wire)",
                                          reason: input.reason, at: now, on: tx)
            }
            user.role = role
        }
        return try UserDTO(user, profile: user.profile, includeEmail: false)
    }

    /// People whose handle or display name starts with `q`, for pickers.
    @Sendable
    func users(_ request: Request) async throws -> Page<PublicUserDTO> {
        _ = try request.principal()
        let limit = try request.pageLimit(default: 20, range: 1...50)
        let rows = try await User.directory(matching: request.query[String.self, at: "q"], after: request.query[String.self, at: "cursor"],
                                            limit: limit + 1, on: request.db)
        let page = Array(rows.prefix(limit))
        return Page(items: try page.map(PublicUserDTO.init), nextCursor: rows.count > limit ? page.last?.handle : nil)
    }

    @Sendable
    func user(_ request: Request) async throws -> UserDTO {
        _ = try request.principal()
        let id = try request.idParameter("user_id", orThrow: AccountError.userNotFound)
        guard let user = try await User.withProfile(id, on: request.db) else { throw AccountError.userNotFound }
        return try UserDTO(user, profile: user.profile, includeEmail: false)
    }
}
