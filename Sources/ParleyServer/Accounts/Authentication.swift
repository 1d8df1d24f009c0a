import Fluent
import SQLKit
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
            guard let session = try await activeSession(id: identity.sessionID, on: request.db),
                  session.user_id == identity.userID
            else {
                throw ProblemError.unauthorized("The session has ended; sign in again.", slug: "session-ended")
            }
            return Principal(userID: identity.userID, role: session.role, sessionID: session.id, method: .bearer)
        }
        if let cookie = request.cookies[Self.cookieName]?.string, !cookie.isEmpty {
            guard let session = try await activeSession(tokenHash: OpaqueToken.digest(cookie), on: request.db) else {
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
            return Principal(userID: session.user_id, role: session.role, sessionID: session.id, method: .cookie)
        }
        return nil
    }

    /// What authentication needs of a session and its user.
    struct ActiveSession: Decodable {
        let id: UUID
        let user_id: UUID
        let role: String
        let expires_at: Date
        let revoked_at: Date?
    }

    /// The session and its user's role in one query. Written in SQL rather than with Fluent's
    /// query builder: it runs on every authenticated request, and the builder's model
    /// reflection and identifier quoting cost several times the query itself (seen in perf).
    private func activeSession(id: UUID? = nil, tokenHash: String? = nil, on db: any Database) async throws -> ActiveSession? {
        guard let sql = db as? any SQLDatabase else { return nil }
        let condition: SQLQueryString = if let id { "s.id = \(bind: id)" } else { "s.token_hash = \(bind: tokenHash ?? "")" }
        let select: SQLQueryString = """
            SELECT s.id AS id, s.user_id AS user_id, u.role AS role, s.expires_at AS expires_at, s.revoked_at AS revoked_at
            FROM sessions s JOIN users u ON u.id = s.user_id WHERE
            """
        guard let session = try await sql.raw(select + " " + condition).first(decoding: ActiveSession.self),
              session.revoked_at == nil, session.expires_at > clock.now()
        else { return nil }
        return session
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
