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
        var query = User.query(on: request.db)
        if let q = request.query[String.self, at: "q"]?.trimmingCharacters(in: .whitespaces).lowercased(), !q.isEmpty {
            let pattern = ConversationService.escapeLike(q) + "%"
            query = query.group(.or) { or in
                or.filter(.sql(embed: "LOWER(\(ident: "handle")) LIKE \(bind: pattern)"))
                or.filter(.sql(embed: "LOWER(\(ident: "display_name")) LIKE \(bind: pattern)"))
            }
        }
        if let cursor = request.query[String.self, at: "cursor"] {
            query = query.filter(\.$handle > cursor)
        }
        let rows = try await query.sort(\.$handle).limit(limit + 1).all()
        let page = Array(rows.prefix(limit))
        return Page(items: try page.map(PublicUserDTO.init), nextCursor: rows.count > limit ? page.last?.handle : nil)
    }

    @Sendable
    func user(_ request: Request) async throws -> UserDTO {
        _ = try request.principal()
        guard let raw = request.parameters.get("user_id"), let id = UUID(uuidString: raw),
              let user = try await User.query(on: request.db).filter(\.$id == id).with(\.$profile).first()
        else { throw ProblemError.notFound("No such user.") }
        return try UserDTO(user, profile: user.profile, includeEmail: false)
    }
}
