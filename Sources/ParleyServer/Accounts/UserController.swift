import Fluent
import Vapor

/// `/v1/users`: the people directory, for pickers and profiles.
struct UserController: RouteCollection {
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        let signedIn = routes.grouped(authentication)
        signedIn.get("users", use: users)
        signedIn.get("users", ":user_id", use: user)
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
