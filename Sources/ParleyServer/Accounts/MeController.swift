import Fluent
import Vapor

/// `/v1/me`: the signed-in user.
struct MeController: RouteCollection {
    let dependencies: AccountDependencies

    func boot(routes: any RoutesBuilder) throws {
        let me = routes.grouped(dependencies.authentication()).grouped("me")
        me.get(use: show)
        me.patch(use: update)
        me.put("password", use: changePassword)
    }

    @Sendable
    func show(_ request: Request) async throws -> UserDTO {
        let principal = try request.principal()
        guard let user = try await User.query(on: request.db).filter(\.$id == principal.userID).with(\.$profile).first() else {
            throw ProblemError.unauthorized("The account no longer exists.")
        }
        return try UserDTO(user, profile: user.profile, includeEmail: true)
    }

    @Sendable
    func update(_ request: Request) async throws -> UserDTO {
        let principal = try request.principal()
        let input = try request.decodeJSON(UpdateMeRequest.self)
        let (user, profile) = try await dependencies.service(request.db).update(userID: principal.userID, with: input)
        return try UserDTO(user, profile: profile, includeEmail: true)
    }

    @Sendable
    func changePassword(_ request: Request) async throws -> HTTPStatus {
        let principal = try request.principal()
        let input = try request.decodeJSON(ChangePasswordRequest.self)
        try await dependencies.service(request.db).changePassword(
            userID: principal.userID, currentSessionID: principal.sessionID, input)
        return .noContent
    }
}
