import Fluent
import Foundation

/// What registering needs besides valid fields, decided by another feature (invites): whether
/// an invite is required, and what using one does. It runs in the transaction that creates the
/// user, so an invite is used exactly when an account is made with it.
protocol RegistrationPolicy: Sendable {
    /// Before anything is written: refuses a registration that needs an invite and has no
    /// usable one (a `ValidationError` on `invite`).
    func check(invite: String?, on db: any Database) async throws
    /// In the user's creation transaction: uses the invite (and what it grants); throws to
    /// undo the registration when the invite was used up meanwhile.
    func admitted(userID: UUID, invite: String?, tx: any Database, outbox: Outbox, at now: Date) async throws
}

/// Anyone may register, and there are no invites to use.
struct OpenRegistration: RegistrationPolicy {
    func check(invite: String?, on db: any Database) async throws {}
    func admitted(userID: UUID, invite: String?, tx: any Database, outbox: Outbox, at now: Date) async throws {}
}
