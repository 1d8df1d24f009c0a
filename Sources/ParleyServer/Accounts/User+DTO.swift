import Vapor

struct UserDTO: Content, Equatable {
    /// Lower-case, as every id on the wire.
    var id: String
    var handle: String
    var displayName: String
    /// Only shown to the user themselves.
    var email: String?
    var role: User.Role
    var kind: User.Kind
    var profile: ProfileDTO?
    var createdAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, handle, email, role, kind, profile
        case displayName = "display_name"
        case createdAt = "created_at"
    }

    init(_ user: User, profile: Profile?, includeEmail: Bool) throws {
        id = try user.requireID().wire
        handle = user.handle
        displayName = user.displayName
        email = includeEmail ? user.email : nil
        role = user.role
        kind = user.kind
        self.profile = profile.map(ProfileDTO.init)
        createdAt = user.createdAt
    }
}

struct ProfileDTO: Content, Equatable {
    var bio: String
    var timeZone: String?

    enum CodingKeys: String, CodingKey {
        case bio
        case timeZone = "time_zone"
    }

    init(_ profile: Profile) {
        bio = profile.bio
        timeZone = profile.timeZone
    }
}

struct RegisterRequest: Content {
    var handle: String?
    var displayName: String?
    var email: String?
    var password: String?
    /// An invite link's token: needed when registration is by invite; joins its conversation.
    var invite: String?

    enum CodingKeys: String, CodingKey {
        case handle, email, password, invite
        case displayName = "display_name"
    }
}

struct LoginRequest: Content {
    /// A handle or an email address.
    var handle: String?
    var password: String?
}

struct RefreshRequest: Content {
    var refreshToken: String?
    enum CodingKeys: String, CodingKey { case refreshToken = "refresh_token" }
}

struct UpdateMeRequest: Content {
    var displayName: String?
    var email: String??
    var bio: String?
    var timeZone: String??

    enum CodingKeys: String, CodingKey {
        case email, bio
        case displayName = "display_name"
        case timeZone = "time_zone"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        displayName = try container.decodeIfPresent(String.self, forKey: .displayName)
        bio = try container.decodeIfPresent(String.self, forKey: .bio)
        // A present `null` clears the field; an absent key leaves it alone.
        email = container.contains(.email) ? .some(try container.decodeIfPresent(String.self, forKey: .email)) : nil
        timeZone = container.contains(.timeZone) ? .some(try container.decodeIfPresent(String.self, forKey: .timeZone)) : nil
    }
}

struct ChangePasswordRequest: Content {
    var currentPassword: String?
    var newPassword: String?
    enum CodingKeys: String, CodingKey {
        case currentPassword = "current_password"
        case newPassword = "new_password"
    }
}

struct TokenResponse: Content {
    var user: UserDTO
    var accessToken: String
    var refreshToken: String
    var tokenType = "Bearer"
    var expiresIn: Int

    enum CodingKeys: String, CodingKey {
        case user
        case accessToken = "access_token"
        case refreshToken = "refresh_token"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
    }
}

struct BrowserSessionResponse: Content {
    var user: UserDTO
    var csrfToken: String
    var expiresAt: Date

    enum CodingKeys: String, CodingKey {
        case user
        case csrfToken = "csrf_token"
        case expiresAt = "expires_at"
    }
}
