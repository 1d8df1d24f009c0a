import Vapor

/// `PUT /v1/conversations/{id}/membership`: `muted` and `notify` (all, mentions, nothing, or
/// null for the default); absent keys stay as they are.
struct MembershipSettingsRequest: Decodable {
    var muted: Bool??
    var notify: String??

    enum CodingKeys: String, CodingKey, CaseIterable { case muted, notify }

    init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        muted = try container.decodePresence(Bool.self, forKey: .muted)
        notify = try container.decodePresence(String.self, forKey: .notify)
    }
}

struct MembershipDTO: Content, Equatable {
    var role: Membership.Role
    var lastReadSeq: Int
    var muted: Bool
    /// Which messages notify the member (the conversation kind's default unless they chose).
    var notify: Membership.NotificationLevel
    var joinedAt: Date

    enum CodingKeys: String, CodingKey {
        case role, muted, notify
        case lastReadSeq = "last_read_seq"
        case joinedAt = "joined_at"
    }

    init(_ membership: Membership, kind: Conversation.Kind) {
        role = membership.role
        lastReadSeq = membership.lastReadSeq
        muted = membership.muted
        notify = membership.notificationLevel(in: kind)
        joinedAt = membership.joinedAt
    }
}

struct ConversationDTO: Content {
    var id: String
    var kind: Conversation.Kind
    var visibility: Conversation.Visibility?
    var title: String?
    var topic: String?
    var lastSeq: Int
    var createdBy: String
    var createdAt: Date?
    var updatedAt: Date?
    var lastActivityAt: Date
    /// The caller's membership; absent when the caller only sees a public channel.
    var membership: MembershipDTO?
    var unreadCount: Int?
    var lastMessage: MessageDTO?
    var memberCount: Int?

    enum CodingKeys: String, CodingKey {
        case id, kind, visibility, title, topic, membership
        case lastSeq = "last_seq"
        case createdBy = "created_by"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case lastActivityAt = "last_activity_at"
        case unreadCount = "unread_count"
        case lastMessage = "last_message"
        case memberCount = "member_count"
    }

    init(_ conversation: Conversation, membership: Membership?, unreadCount: Int? = nil,
         lastMessage: MessageDTO? = nil, memberCount: Int? = nil) throws {
        id = try conversation.requireID().wire
        kind = conversation.kind
        visibility = conversation.visibility
        title = conversation.title
        topic = conversation.topic
        lastSeq = conversation.lastSeq
        createdBy = conversation.$creator.id.wire
        createdAt = conversation.createdAt
        updatedAt = conversation.updatedAt
        lastActivityAt = conversation.lastActivityAt
        self.membership = membership.map { MembershipDTO($0, kind: conversation.kind) }
        self.unreadCount = unreadCount
        self.lastMessage = lastMessage
        self.memberCount = memberCount
    }
}

struct MemberDTO: Content {
    var user: PublicUserDTO
    var role: Membership.Role
    var joinedAt: Date

    enum CodingKeys: String, CodingKey {
        case user, role
        case joinedAt = "joined_at"
    }
}

struct CreateConversationRequest: Decodable {
    var kind: String?
    var title: String?
    var topic: String?
    var visibility: String?
    var memberIDs: [String]?

    enum CodingKeys: String, CodingKey {
        case kind, title, topic, visibility
        case memberIDs = "member_ids"
    }
}

/// A JSON merge patch (RFC 7396) of a conversation: absent keys are left alone, `null` clears.
struct UpdateConversationRequest: Decodable {
    var title: String??
    var topic: String??
    var visibility: String??

    enum CodingKeys: String, CodingKey { case title, topic, visibility }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        title = try container.decodePresence(String.self, forKey: .title)
        topic = try container.decodePresence(String.self, forKey: .topic)
        visibility = try container.decodePresence(String.self, forKey: .visibility)
    }
}

struct AddMemberRequest: Decodable {
    var userID: String?
    var role: String?
    enum CodingKeys: String, CodingKey {
        case role
        case userID = "user_id"
    }
}

struct ChangeRoleRequest: Decodable {
    var role: String?
}

struct ReadMarkerRequest: Decodable {
    var seq: Int?
}

struct ReadMarkerDTO: Content {
    var lastReadSeq: Int
    var unreadCount: Int
    enum CodingKeys: String, CodingKey {
        case lastReadSeq = "last_read_seq"
        case unreadCount = "unread_count"
    }
}
