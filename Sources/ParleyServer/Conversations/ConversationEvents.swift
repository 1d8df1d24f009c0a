import Foundation

// The domain events of conversations and messages: what the outbox records, clients receive
// (`type` and `data`) and other features subscribe to.

extension EventType {
    static let conversationCreated = EventType("conversation.created")
    static let conversationUpdated = EventType("conversation.updated")
    static let conversationDeleted = EventType("conversation.deleted")
    static let memberJoined = EventType("member.joined")
    static let memberLeft = EventType("member.left")
    static let memberRoleChanged = EventType("member.role_changed")
    static let messageCreated = EventType("message.created")
    static let messageEdited = EventType("message.edited")
    static let messageDeleted = EventType("message.deleted")
    static let messageHeld = EventType("message.held")
    static let messageApproved = EventType("message.approved")
    static let reactionAdded = EventType("reaction.added")
    static let reactionRemoved = EventType("reaction.removed")
    static let readUpdated = EventType("read.updated")
    static let membershipUpdated = EventType("membership.updated")
}

/// An event whose data is a wire value as it is (a message, a conversation, a member change).
protocol WrappingEvent: DomainEvent {
    associatedtype Value: Codable & Sendable
    var value: Value { get }
    init(_ value: Value)
}

extension WrappingEvent {
    init(from decoder: any Decoder) throws {
        self.init(try Value(from: decoder))
    }

    func encode(to encoder: any Encoder) throws {
        try value.encode(to: encoder)
    }
}

struct ConversationCreated: WrappingEvent {
    static let type = EventType.conversationCreated
    var conversation: ConversationDTO
    init(_ conversation: ConversationDTO) { self.conversation = conversation }
    var value: ConversationDTO { conversation }
}

struct ConversationUpdated: WrappingEvent {
    static let type = EventType.conversationUpdated
    var conversation: ConversationDTO
    init(_ conversation: ConversationDTO) { self.conversation = conversation }
    var value: ConversationDTO { conversation }
}

struct ConversationDeleted: DomainEvent {
    static let type = EventType.conversationDeleted
    var id: String
}

/// Who joined, left or changed role, with the role and (for leaving) `left` or `removed`.
struct MemberChange: Codable, Sendable, Equatable {
    var userID: String
    var role: Membership.Role
    var reason: String?

    enum CodingKeys: String, CodingKey {
        case role, reason
        case userID = "user_id"
    }

    var user: UUID? { UUID(wire: userID) }
}

struct MemberJoined: WrappingEvent {
    static let type = EventType.memberJoined
    var member: MemberChange
    init(_ member: MemberChange) { self.member = member }
    var value: MemberChange { member }
}

struct MemberLeft: WrappingEvent {
    static let type = EventType.memberLeft
    var member: MemberChange
    init(_ member: MemberChange) { self.member = member }
    var value: MemberChange { member }
}

struct MemberRoleChanged: WrappingEvent {
    static let type = EventType.memberRoleChanged
    var member: MemberChange
    init(_ member: MemberChange) { self.member = member }
    var value: MemberChange { member }
}

struct MessageSent: WrappingEvent {
    static let type = EventType.messageCreated
    var message: MessageDTO
    init(_ message: MessageDTO) { self.message = message }
    var value: MessageDTO { message }
}

struct MessageEdited: WrappingEvent {
    static let type = EventType.messageEdited
    var message: MessageDTO
    init(_ message: MessageDTO) { self.message = message }
    var value: MessageDTO { message }
}

struct MessageDeleted: WrappingEvent {
    static let type = EventType.messageDeleted
    var message: MessageDTO
    init(_ message: MessageDTO) { self.message = message }
    var value: MessageDTO { message }
}

/// A message moderation held, whole, for its author only (the other members' event shows its
/// place without its text).
struct MessageHeld: WrappingEvent {
    static let type = EventType.messageHeld
    var message: MessageDTO
    init(_ message: MessageDTO) { self.message = message }
    var value: MessageDTO { message }
}

/// A held or flagged message a moderator let stand: everyone now sees it whole.
struct MessageApproved: WrappingEvent {
    static let type = EventType.messageApproved
    var message: MessageDTO
    init(_ message: MessageDTO) { self.message = message }
    var value: MessageDTO { message }
}

/// One user's emoji on one message.
struct ReactionChange: Codable, Sendable, Equatable {
    var messageID: String
    var seq: Int
    var userID: String
    var emoji: String

    enum CodingKeys: String, CodingKey {
        case seq, emoji
        case messageID = "message_id"
        case userID = "user_id"
    }
}

struct ReactionAdded: WrappingEvent {
    static let type = EventType.reactionAdded
    var reaction: ReactionChange
    init(_ reaction: ReactionChange) { self.reaction = reaction }
    var value: ReactionChange { reaction }
}

struct ReactionRemoved: WrappingEvent {
    static let type = EventType.reactionRemoved
    var reaction: ReactionChange
    init(_ reaction: ReactionChange) { self.reaction = reaction }
    var value: ReactionChange { reaction }
}

/// A member's read marker moved; only that member sees it.
struct ReadMarkerMoved: DomainEvent {
    static let type = EventType.readUpdated
    var userID: String
    var lastReadSeq: Int

    enum CodingKeys: String, CodingKey {
        case userID = "user_id"
        case lastReadSeq = "last_read_seq"
    }
}

/// A member changed their mute or notification level; only that member sees it.
struct MembershipSettingsChanged: DomainEvent {
    static let type = EventType.membershipUpdated
    var muted: Bool?
    var notify: String??

    func encode(to encoder: any Encoder) throws {
        enum Keys: String, CodingKey { case muted, notify }
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(muted, forKey: .muted)
        if let notify { try container.encode(notify, forKey: .notify) }
    }

    init(muted: Bool?, notify: String??) {
        self.muted = muted
        self.notify = notify
    }

    init(from decoder: any Decoder) throws {
        enum Keys: String, CodingKey { case muted, notify }
        let container = try decoder.container(keyedBy: Keys.self)
        muted = try container.decodeIfPresent(Bool.self, forKey: .muted)
        notify = try container.decodePresence(String.self, forKey: .notify)
    }
}
