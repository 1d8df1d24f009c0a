import Fluent
import Vapor

/// `/v1/auth`: registration, sign-in, token refresh, sign-out and browser sessions.
struct AuthController: RouteCollection {
    let dependencies: AccountDependencies

    func boot(routes: any RoutesBuilder) throws {
        let auth = routes.grouped("auth")
        auth.post("register", use: register)
        auth.post("login", use: login)
        auth.post("refresh", use: refresh)
        auth.post("session", use: createSession)

        let signedIn = auth.grouped(dependencies.authentication())
        signedIn.post("logout", use: logout)
        signedIn.get("session", use: showSession)
        signedIn.delete("session", use: deleteSession)
    }

    @Sendable
    func register(_ request: Request) async throws -> Response {
        let input = try request.decodeJSON(RegisterRequest.self)
        let issued = try await dependencies.service(request.db).register(input)
        return try tokenResponse(issued, status: .created)
    }

    @Sendable
    func login(_ request: Request) async throws -> Response {
        let input = try request.decodeJSON(LoginRequest.self)
        let issued = try await dependencies.service(request.db).login(input, clientAddress: dependencies.clientAddress(of: request))
        return try tokenResponse(issued, status: .ok)
    }

    @Sendable
    func refresh(_ request: Request) async throws -> Response {
        let input = try request.decodeJSON(RefreshRequest.self)
        let issued = try await dependencies.service(request.db).refresh(input)
        return try tokenResponse(issued, status: .ok)
    }

    @Sendable
    func logout(_ request: Request) async throws -> Response {
        let principal = try request.principal()
        try await dependencies.service(request.db).logout(sessionID: principal.sessionID)
        let response = Response(status: .noContent)
        if principal.method == .cookie { response.cookies[AuthenticationMiddleware.cookieName] = expiredCookie() }
        return response
    }

    @Sendable
    func createSession(_ request: Request) async throws -> Response {
        let input = try request.decodeJSON(LoginRequest.self)
        let service = dependencies.service(request.db)
        let user = try await service.authenticate(login: input.handle, password: input.password,
                                                  clientAddress: dependencies.clientAddress(of: request))
        let session = try await service.startBrowserSession(user: user)
        let body = BrowserSessionResponse(
            user: try UserDTO(session.user, profile: session.profile, includeEmail: true),
            csrfToken: session.csrfToken, expiresAt: session.expiresAt)
        let response = try await body.encodeResponse(status: .created, for: request)
        response.cookies[AuthenticationMiddleware.cookieName] = HTTPCookies.Value(
            string: session.cookieValue, expires: session.expiresAt, path: "/",
            isSecure: dependencies.secureCookies, isHTTPOnly: true, sameSite: .lax)
        return response
    }

    /// The browser session the cookie names: its user and CSRF token. The cookie is HttpOnly,
    /// so a page that was reloaded learns here who is signed in and what to send in
    /// `X-CSRF-Token` (only a page of this origin can read the answer).
    @Sendable
    func showSession(_ request: Request) async throws -> BrowserSessionResponse {
        let principal = try request.principal()
        guard principal.method == .cookie, let cookie = request.cookies[AuthenticationMiddleware.cookieName]?.string else {
            throw ProblemError.badRequest("GET /v1/auth/session reads a browser session; API clients use GET /v1/me.")
        }
        guard let session = try await Session.find(principal.sessionID, on: request.db),
              let user = try await User.query(on: request.db).filter(\.$id == principal.userID).with(\.$profile).first()
        else { throw ProblemError.unauthorized("The session has ended.") }
        return BrowserSessionResponse(user: try UserDTO(user, profile: user.profile, includeEmail: true),
                                      csrfToken: dependencies.tokens.csrfToken(forSessionToken: cookie), expiresAt: session.expiresAt)
    }

    @Sendable
    func deleteSession(_ request: Request) async throws -> Response {
        let principal = try request.principal()
        guard principal.method == .cookie else {
            throw ProblemError.badRequest("DELETE /v1/auth/session ends a browser session; API clients use POST /v1/auth/logout.")
        }
        try await dependencies.service(request.db).logout(sessionID: principal.sessionID)
        let response = Response(status: .noContent)
        response.cookies[AuthenticationMiddleware.cookieName] = expiredCookie()
        return response
    }

    private func expiredCookie() -> HTTPCookies.Value {
        HTTPCookies.Value(string: "", expires: Date(timeIntervalSince1970: 0), maxAge: 0, path: "/",
                          isSecure: dependencies.secureCookies, isHTTPOnly: true, sameSite: .lax)
    }

    private func tokenResponse(_ issued: AccountService.IssuedTokens, status: HTTPResponseStatus) throws -> Response {
        let body = TokenResponse(
            user: try UserDTO(issued.user, profile: issued.profile, includeEmail: true),
            accessToken: issued.accessToken, refreshToken: issued.refreshToken, expiresIn: issued.expiresIn)
        let response = Response(status: status)
        try response.content.encode(body, as: .json)
        return response
    }
}
