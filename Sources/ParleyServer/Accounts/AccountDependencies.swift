import Fluent
import Vapor

/// What the account controllers share, built once in `configure`.
struct AccountDependencies: Sendable {
    let tokens: TokenService
    let passwords: PasswordHasher
    let throttle: LoginThrottle
    let clock: AppClock
    let settings: Settings
    let writes: WriteGate
    var registration: any RegistrationPolicy = OpenRegistration()

    var secureCookies: Bool { settings.secureCookies }

    func service(_ db: any Database) -> AccountService {
        AccountService(db: db, tokens: tokens, passwords: passwords, throttle: throttle, clock: clock,
                       refreshTokenLifetime: settings.refreshTokenLifetime, sessionLifetime: settings.sessionLifetime,
                       writes: writes, registration: registration)
    }

    func authentication(required: Bool = true) -> AuthenticationMiddleware {
        AuthenticationMiddleware(tokens: tokens, clock: clock, required: required)
    }

    /// The client's address for the login throttle: the peer, or the first `X-Forwarded-For`
    /// hop when the operator says a trusted proxy sets it.
    func clientAddress(of request: Request) -> String? {
        if settings.trustForwardedFor, let forwarded = request.headers.first(name: "X-Forwarded-For") {
            return forwarded.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return request.remoteAddress?.ipAddress
    }
}
