import Fluent
import Vapor

/// Authenticates a request by bearer token or session cookie and enforces CSRF for cookies.
///
/// A bearer header that is present must be valid (401 otherwise, with the reason). A request
/// authenticated by the session cookie that is not GET, HEAD or OPTIONS must carry the
/// session's CSRF token in `X-CSRF-Token` (403 otherwise). Bearer requests need no CSRF token:
/// a browser never attaches them by itself.
struct AuthenticationMiddleware: AsyncMiddleware {
    static let cookieName = "parley_session"
    static let csrfHeader: HTTPHeaders.Name = "X-CSRF-Token"

    let tokens: TokenService
    let clock: AppClock
    /// When false the request may continue anonymously.
    var required = true

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        if request.auth.has(Principal.self) {
            // Already signed in by an earlier authenticator (an event-stream ticket).
        } else if let principal = try await resolve(request) {
            request.auth.login(principal)
        } else if required {
            throw ProblemError.unauthorized("Sign in: send `Authorization: Bearer <access token>` or the session cookie.")
        }
        return try await next.respond(to: request)
    }

    private func resolve(_ request: Request) async throws -> Principal? {
        if let authorization = request.headers.first(name: .authorization) {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw ProblemError.unauthorized("Use the Bearer scheme: `Authorization: Bearer <access token>`.", slug: "invalid-token")
            }
            let identity: (userID: UUID, sessionID: UUID)
            do {
                identity = try await tokens.verify(String(parts[1]))
            } catch .expired {
                throw ProblemError.unauthorized("The access token has expired; refresh it.", slug: "token-expired")
            } catch {
                throw ProblemError.unauthorized("The access token is invalid.", slug: "invalid-token")
            }
            guard let (session, user) = try await activeSession(id: identity.sessionID, on: request.db),
                  user.id == identity.userID
            else {
                throw ProblemError.unauthorized("The session has ended; sign in again.", slug: "session-ended")
            }
            return Principal(userID: identity.userID, role: user.role.rawValue, sessionID: try session.requireID(), method: .bearer)
        }
        if let cookie = request.cookies[Self.cookieName]?.string, !cookie.isEmpty {
            guard let (session, user) = try await activeSession(tokenHash: OpaqueToken.digest(cookie), on: request.db) else {
                // A stale cookie is anonymous, as if it were absent.
                return nil
            }
            if ![.GET, .HEAD, .OPTIONS].contains(request.method) {
                guard let presented = request.headers.first(name: Self.csrfHeader),
                      tokens.csrfTokenMatches(presented, sessionToken: cookie)
                else {
                    throw ProblemError.forbidden("This request needs the session's CSRF token in X-CSRF-Token.", slug: "csrf-failed")
                }
            }
            return Principal(userID: try user.requireID(), role: user.role.rawValue, sessionID: try session.requireID(), method: .cookie)
        }
        return nil
    }

    /// The session and its user in one query.
    private func activeSession(id: UUID? = nil, tokenHash: String? = nil, on db: any Database) async throws -> (Session, User)? {
        var query = Session.query(on: db).join(User.self, on: \Session.$user.$id == \User.$id)
        if let id { query = query.filter(\.$id == id) }
        if let tokenHash { query = query.filter(\.$tokenHash == tokenHash) }
        guard let session = try await query.first(), session.isActive(at: clock.now()) else { return nil }
        return (session, try session.joined(User.self))
    }
}

extension Request {
    /// The authenticated caller; 401 when there is none.
    func principal() throws -> Principal {
        guard let principal = auth.get(Principal.self) else {
            throw ProblemError.unauthorized("Sign in to continue.")
        }
        return principal
    }
}
