import Fluent
import Foundation
import Vapor

/// Invite links: made by a conversation's owners and admins (for that conversation) or by site
/// administrators (for the site), looked at by anyone holding one, used to register (when
/// registration needs an invite) or to join. A link has an optional expiry and use limit and
/// can be revoked.
struct InviteService: Sendable {
    let db: any Database
    let writes: WriteGate
    let clock: AppClock
    let chat: ChatDependencies

    static let maxLifetime: TimeInterval = 90 * 24 * 3600

    struct Created: Sendable {
        let invite: Invite
        let token: String
    }

    func create(_ input: CreateInviteRequest, by caller: Principal) async throws -> Created {
        var validator = Validator()
        if let uses = input.maxUses, !(1...10_000).contains(uses) {
            validator.add("max_uses", "out_of_range", "must be 1-10000 (or absent for no limit)")
        }
        if let seconds = input.expiresIn, !(60...Self.maxLifetime).contains(seconds) {
            validator.add("expires_in", "out_of_range", "must be 60 seconds to 90 days")
        }
        var conversationID: UUID?
        if let raw = input.conversationID {
            if let id = UUID(wire: raw) { conversationID = id } else { validator.add("conversation_id", "invalid", "must be a conversation id") }
        }
        try validator.check()
        if let conversationID {
            let access = try await chat.conversations(db).access(conversationID, userID: caller.userID)
            guard access.conversation.kind != .direct else { throw InviteError.directConversation }
            guard access.membership?.canManage == true else { throw InviteError.mayNotInvite }
        } else if caller.role != User.Role.admin.rawValue {
            throw InviteError.mayNotInvite
        }
        let now = clock.now()
        let invite = Invite(id: UUID.timeOrdered(), conversationID: conversationID, createdBy: caller.userID, maxUses: input.maxUses, uses: 0,
                            expiresAt: input.expiresIn.map { now.addingTimeInterval($0) }, revokedAt: nil, createdAt: now)
        let token = OpaqueToken.generate()
        try await db.writeTransaction(writes) { tx in try await Invite.insert(invite, token: token, on: tx) }
        return Created(invite: invite, token: token)
    }

    /// What a link leads to, for whoever holds it; unusable links are not found.
    func lookup(_ token: String) async throws -> (Invite, title: String?) {
        guard let invite = try await Invite.find(token: token, on: db), invite.usable(at: clock.now()) else { throw InviteError.notFound }
        var title: String?
        if let id = invite.conversationID, let conversation = try await Conversation.find(id, on: db) { title = conversation.title }
        return (invite, title)
    }

    /// A signed-in person uses a link: they join its conversation.
    func accept(_ token: String, userID: UUID) async throws -> UUID? {
        let now = clock.now()
        return try await db.writeTransaction(writes) { tx, outbox in
            try await Self.use(token, by: userID, at: now, tx: tx, outbox: outbox)
        }
    }

    /// Uses a link for `userID` in the caller's transaction: counts the use and adds them to
    /// its conversation (with `member.joined`). Returns the conversation.
    static func use(_ token: String, by userID: UUID, at now: Date, tx: any Database, outbox: Outbox) async throws -> UUID? {
        guard let invite = try await Invite.use(token: token, at: now, on: tx) else { throw InviteError.notFound }
        guard let conversationID = invite.conversationID else { return nil }
        if try await Membership.admit(userID, to: conversationID, at: now, on: tx) {
            try await outbox.record(MemberJoined(MemberChange(userID: userID.wire, role: .member)), in: conversationID, at: now)
        }
        return conversationID
    }

    func list(by caller: Principal) async throws -> [Invite] {
        try await Invite.list(createdBy: caller.role == User.Role.admin.rawValue ? nil : caller.userID, limit: 200, on: db)
    }

    func revoke(_ id: UUID, by caller: Principal) async throws {
        guard let invite = try await Invite.find(id: id, on: db),
              invite.createdBy == caller.userID || caller.role == User.Role.admin.rawValue
        else { throw InviteError.notFound }
        let now = clock.now()
        try await db.writeTransaction(writes) { tx in try await Invite.revoke(id, at: now, on: tx) }
    }
}

/// The registration seam's invite side: when registration needs an invite, a usable one; an
/// invite given at registration is used in the transaction that creates the account.
struct InviteRegistrationPolicy: RegistrationPolicy {
    let required: Bool
    let clock: AppClock

    func check(invite: String?, on db: any Database) async throws {
        guard let invite, !invite.isEmpty else {
            if required { throw ValidationError(field: "invite", code: "required", message: "registration on this server needs an invite link") }
            return
        }
        guard let found = try await Invite.find(token: invite, on: db), found.usable(at: clock.now()) else {
            throw ValidationError(field: "invite", code: "invalid", message: "is not a usable invite (expired, used up or revoked)")
        }
    }

    func admitted(userID: UUID, invite: String?, tx: any Database, outbox: Outbox, at now: Date) async throws {
        guard let invite, !invite.isEmpty else { return }
        do {
            _ = try await InviteService.use(invite, by: userID, at: now, tx: tx, outbox: outbox)
        } catch InviteError.notFound {
            throw ValidationError(field: "invite", code: "invalid", message: "is not a usable invite (expired, used up or revoked)")
        }
    }
}

enum InviteError: Error {
    case notFound
    case mayNotInvite
    case directConversation
}
