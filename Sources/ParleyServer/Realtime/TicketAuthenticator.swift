import Fluent
import SQLKit
import Vapor

/// Signs in a request to an event stream by `?ticket=`, consuming the ticket. Runs before the
/// ordinary authentication, which then finds the caller already signed in.
struct TicketAuthenticator: AsyncMiddleware {
    let clock: AppClock
    let writes: WriteGate

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        guard let ticket = request.query[String.self, at: "ticket"] else { return try await next.respond(to: request) }
        let now = clock.now()
        let digest = OpaqueToken.digest(ticket)
        struct Row: Decodable { let user_id: UUID; let session_id: UUID }
        // One conditional update redeems the ticket, so it works once even when raced.
        let row: Row? = try await request.db.writeTransaction(writes) { tx in
            guard let sql = tx as? any SQLDatabase else { return nil }
            return try await sql.raw("""
                UPDATE event_tickets SET used_at = \(bind: now)
                WHERE token_hash = \(bind: digest) AND used_at IS NULL AND expires_at > \(bind: now)
                RETURNING user_id, session_id
                """).first(decoding: Row.self)
        }
        guard let row,
              let session = try await Session.find(row.session_id, on: request.db), session.isActive(at: now),
              let user = try await User.find(row.user_id, on: request.db)
        else {
            throw ProblemError.unauthorized("The ticket is invalid, expired or already used; ask for a new one.", slug: "invalid-ticket")
        }
        request.auth.login(Principal(userID: row.user_id, role: user.role.rawValue, sessionID: row.session_id, method: .bearer))
        return try await next.respond(to: request)
    }
}
