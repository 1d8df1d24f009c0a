import NIOConcurrencyHelpers
import Fluent
import SQLKit
import Vapor

/// Accounts, sign-in and sessions, independent of HTTP.
struct AccountService: Sendable {
    let db: any Database
    let tokens: TokenService
    let passwords: PasswordHasher
    let throttle: LoginThrottle
    let clock: AppClock
    let refreshTokenLifetime: Duration
    let sessionLifetime: Duration
    let writes: WriteGate?
    var registration: any RegistrationPolicy = OpenRegistration()

    struct IssuedTokens: Sendable {
        var user: User
        var profile: Profile?
        var accessToken: String
        var refreshToken: String
        var expiresIn: Int
    }

    struct BrowserSession: Sendable {
        var user: User
        var profile: Profile?
        var cookieValue: String
        var csrfToken: String
        var expiresAt: Date
    }

    // MARK: Registration

    func register(_ input: RegisterRequest) async throws -> IssuedTokens {
        try await registration.check(invite: input.invite, on: db)
        let (user, profile) = try await createUser(
            handle: input.handle, displayName: input.displayName, email: input.email, password: input.password, role: .user,
            invite: .some(input.invite))
        return try await startAPISession(user: user, profile: profile)
    }

    /// Validates and creates a user with a profile, naming every bad field at once.
    /// `invite`: present (possibly nil) for a registration, which the registration policy
    /// admits in the creating transaction; absent for accounts an administrator makes.
    func createUser(handle rawHandle: String?, displayName rawDisplayName: String?, email rawEmail: String?,
                    password: String?, role: User.Role, invite: String?? = nil) async throws -> (User, Profile) {
        var validator = Validator()
        let handle = Self.validateHandle(rawHandle, into: &validator)
        let displayName = rawDisplayName == nil
            ? handle
            : validator.text(rawDisplayName, "display_name", length: 1...64)
        let email = Self.validateEmail(rawEmail, into: &validator)
        if let password = validator.require(password, "password") {
            PasswordPolicy.check(password, handle: handle ?? rawHandle, field: "password", into: &validator)
        }
        try validator.check()
        guard let handle, let displayName, let password else { throw ValidationError(validator.errors) }

        var taken: [FieldError] = []
        if try await User.find(handle: handle, on: db) != nil {
            taken.append(FieldError(field: "handle", code: "taken", message: "is already taken"))
        }
        if let email, try await User.find(email: email, on: db) != nil {
            taken.append(FieldError(field: "email", code: "taken", message: "is already registered"))
        }
        if !taken.isEmpty { throw AccountError.accountExists(taken) }

        let hash = try await passwords.hash(password)
        let user = User(handle: handle, displayName: displayName, email: email, passwordHash: hash, role: role)
        let registration = self.registration, now = clock.now()
        let profile = try await db.writeTransaction(writes) { tx, outbox in
            do {
                try await user.create(on: tx)
            } catch let error as any DatabaseError where error.isConstraintFailure {
                // Lost a race with a concurrent registration of the same handle or email.
                throw AccountError.accountExists([FieldError(field: "handle", code: "taken", message: "is already taken")])
            }
            let profile = Profile(userID: try user.requireID())
            try await profile.create(on: tx)
            if let invite { try await registration.admitted(userID: try user.requireID(), invite: invite, tx: tx, outbox: outbox, at: now) }
            return profile
        }
        return (user, profile)
    }

    static func validateHandle(_ raw: String?, into validator: inout Validator) -> String? {
        guard let raw = validator.require(raw, "handle") else { return nil }
        let handle = raw.trimmingCharacters(in: .whitespaces).lowercased()
        guard (3...32).contains(handle.count) else {
            validator.add("handle", handle.count < 3 ? "too_short" : "too_long", "must be 3-32 characters")
            return nil
        }
        let allowed = handle.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || "_.-".unicodeScalars.contains($0) }
        guard allowed else {
            validator.add("handle", "invalid_format", "may contain only a-z, 0-9, '_', '.' and '-'")
            return nil
        }
        return handle
    }

    static func validateEmail(_ raw: String?, into validator: inout Validator) -> String? {
        guard let raw else { return nil }
        let email = raw.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        let valid = email.count <= 254 && parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".")
            && !parts[1].hasPrefix(".") && !parts[1].hasSuffix(".") && !email.contains(where: \.isWhitespace)
        guard valid else {
            validator.add("email", "invalid_format", "must be an email address")
            return nil
        }
        return email
    }

    // MARK: Sign-in

    /// Checks credentials under the login throttle; on success returns the user.
    func authenticate(login: String?, password: String?, clientAddress: String?) async throws -> User {
        var validator = Validator()
        let login = validator.text(login, "handle", length: 1...254)
        let password = validator.require(password, "password")
        try validator.check()
        guard let login, let password else { throw ValidationError(validator.errors) }

        let keys = LoginThrottle.keys(handle: login, address: clientAddress)
        switch await throttle.check(keys) {
        case .block(let retryAfter):
            throw AccountError.tooManyAttempts(retryAfter: retryAfter)
        case .allow(let delay):
            if delay > .zero { try await Task.sleep(for: delay) }
        }

        let user = login.contains("@")
            ? try await User.find(email: login, on: db)
            : try await User.find(handle: login, on: db)
        // Verify against a fixed hash when the user does not exist, so timing does not reveal it.
        let hash = if let user { user.passwordHash } else { try await passwords.decoy() }
        let valid = try await passwords.verify(password, against: hash)
        guard let user, valid else {
            await throttle.recordFailure(keys)
            throw AccountError.invalidCredentials
        }
        await throttle.recordSuccess(keys)
        return user
    }

    func login(_ input: LoginRequest, clientAddress: String?) async throws -> IssuedTokens {
        let user = try await authenticate(login: input.handle, password: input.password, clientAddress: clientAddress)
        return try await startAPISession(user: user, profile: try await user.$profile.get(on: db))
    }

    // MARK: Tokens

    /// Opens a new refresh-token family for the user and returns its first pair.
    func startAPISession(user: User, profile: Profile?) async throws -> IssuedTokens {
        let userID = try user.requireID()
        let now = clock.now()
        let session = Session(userID: userID, kind: .api, tokenHash: nil,
                              expiresAt: now.addingTimeInterval(seconds(sessionLifetime)))
        let refresh = OpaqueToken.generate()
        try await db.writeTransaction(writes) { tx in
            try await session.create(on: tx)
            try await RefreshToken(sessionID: session.requireID(), tokenHash: OpaqueToken.digest(refresh),
                                   expiresAt: now.addingTimeInterval(seconds(refreshTokenLifetime))).create(on: tx)
        }
        let access = try await tokens.issue(userID: userID, sessionID: try session.requireID())
        return IssuedTokens(user: user, profile: profile, accessToken: access.token, refreshToken: refresh, expiresIn: access.expiresIn)
    }

    /// Exchanges a refresh token for a new pair. A token that was already exchanged is a sign
    /// of theft: the whole family is revoked and the caller gets 401.
    func refresh(_ input: RefreshRequest) async throws -> IssuedTokens {
        var validator = Validator()
        let presented = validator.text(input.refreshToken, "refresh_token", length: 1...512)
        try validator.check()
        guard let presented else { throw ValidationError(validator.errors) }

        let invalid = AccountError.invalidRefreshToken
        let now = clock.now()
        guard let stored = try await RefreshToken.query(on: db).filter(\.$tokenHash == OpaqueToken.digest(presented)).first(),
              let session = try await Session.find(stored.$session.id, on: db)
        else { throw invalid }
        guard session.isActive(at: now) else { throw invalid }
        if stored.rotatedAt != nil {
            try await revoke(session, reason: "refresh_token_reuse", at: now)
            throw AccountError.refreshTokenReused
        }
        guard stored.expiresAt > now else { throw invalid }

        let next = OpaqueToken.generate()
        let nextRow = RefreshToken(sessionID: try session.requireID(), tokenHash: OpaqueToken.digest(next),
                                   expiresAt: now.addingTimeInterval(seconds(refreshTokenLifetime)))
        let rotated: Bool = try await db.writeTransaction(writes) { tx in
            // Only one of two concurrent refreshes with the same token may win.
            guard let sql = tx as? any SQLDatabase else { throw StorageError.notSQL }
            let won = try await sql.update(RefreshToken.schema)
                .set("rotated_at", to: SQLBind(now))
                .set("replaced_by", to: SQLBind(nextRow.id))
                .where("id", .equal, SQLBind(stored.id))
                .where("rotated_at", .is, SQLLiteral.null)
                .returning("id")
                .all()
            guard !won.isEmpty else { return false }
            try await nextRow.create(on: tx)
            return true
        }
        guard rotated else {
            try await revoke(session, reason: "refresh_token_reuse", at: now)
            throw AccountError.refreshTokenReused
        }
        let user = try await User.find(session.$user.id, on: db)
        guard let user else { throw invalid }
        let access = try await tokens.issue(userID: try user.requireID(), sessionID: try session.requireID())
        return IssuedTokens(user: user, profile: try await user.$profile.get(on: db), accessToken: access.token,
                            refreshToken: next, expiresIn: access.expiresIn)
    }

    func revoke(_ session: Session, reason: String, at now: Date) async throws {
        guard session.revokedAt == nil else { return }
        session.revokedAt = now
        session.revokedReason = reason
        try await db.writeTransaction(writes) { tx in try await session.update(on: tx) }
    }

    func logout(sessionID: UUID) async throws {
        guard let session = try await Session.find(sessionID, on: db) else { return }
        try await revoke(session, reason: "logout", at: clock.now())
    }

    // MARK: Browser sessions

    func startBrowserSession(user: User) async throws -> BrowserSession {
        let cookie = OpaqueToken.generate()
        let expiresAt = clock.now().addingTimeInterval(seconds(sessionLifetime))
        let session = Session(userID: try user.requireID(), kind: .browser, tokenHash: OpaqueToken.digest(cookie), expiresAt: expiresAt)
        try await db.writeTransaction(writes) { tx in try await session.create(on: tx) }
        return BrowserSession(user: user, profile: try await user.$profile.get(on: db), cookieValue: cookie,
                              csrfToken: tokens.csrfToken(forSessionToken: cookie), expiresAt: expiresAt)
    }

    // MARK: The signed-in user

    func update(userID: UUID, with input: UpdateMeRequest) async throws -> (User, Profile?) {
        guard let user = try await User.find(userID, on: db) else { throw AccountError.userNotFound }
        let profile = try await user.$profile.get(on: db) ?? Profile(userID: userID)
        var validator = Validator()
        if input.displayName != nil, let name = validator.text(input.displayName, "display_name", length: 1...64) {
            user.displayName = name
        }
        if let email = input.email {
            if let email {
                if let valid = Self.validateEmail(email, into: &validator) { user.email = valid }
            } else {
                user.email = nil
            }
        }
        if input.bio != nil {
            if let bio = input.bio, bio.count <= 280 { profile.bio = bio.trimmingCharacters(in: .whitespacesAndNewlines) }
            else { validator.add("bio", "too_long", "must be at most 280 characters") }
        }
        if let zone = input.timeZone {
            if let zone {
                if TimeZone(identifier: zone) != nil { profile.timeZone = zone }
                else { validator.add("time_zone", "invalid", "must be an IANA time zone such as Europe/Paris") }
            } else {
                profile.timeZone = nil
            }
        }
        try validator.check()
        if let email = user.email,
           let other = try await User.find(email: email, on: db), other.id != user.id {
            throw AccountError.emailTaken
        }
        do {
            try await db.writeTransaction(writes) { tx in
                try await user.save(on: tx)
                try await profile.save(on: tx)
            }
        } catch where (error as? any DatabaseError)?.isConstraintFailure == true {
            // Another account claimed the email between the check and the write.
            throw AccountError.emailTaken
        }
        return (user, profile)
    }

    /// Changes the password after checking the current one, and ends every other session.
    func changePassword(userID: UUID, currentSessionID: UUID, _ input: ChangePasswordRequest) async throws {
        guard let user = try await User.find(userID, on: db) else { throw AccountError.userNotFound }
        var validator = Validator()
        let current = validator.require(input.currentPassword, "current_password")
        if let new = validator.require(input.newPassword, "new_password") {
            PasswordPolicy.check(new, handle: user.handle, field: "new_password", into: &validator)
        }
        try validator.check()
        guard let current, let new = input.newPassword else { return }
        guard try await passwords.verify(current, against: user.passwordHash) else {
            throw ValidationError(field: "current_password", code: "incorrect", message: "is not your current password")
        }
        user.passwordHash = try await passwords.hash(new)
        let now = clock.now()
        try await db.writeTransaction(writes) { tx in
            try await user.save(on: tx)
            try await Session.revoke(userID: userID, except: currentSessionID, reason: "password_changed", at: now, on: tx)
        }
    }

    private func seconds(_ duration: Duration) -> TimeInterval {
        TimeInterval(duration.components.seconds)
    }
}
