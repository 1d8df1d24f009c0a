import Foundation

extension EventType {
    static let notificationCreated = EventType("notification.created")
    static let notificationsRead = EventType("notifications.read")
}

/// A notification for one person; only they see it.
struct NotificationCreated: WrappingEvent {
    static let type = EventType.notificationCreated
    var notification: NotificationDTO
    init(_ notification: NotificationDTO) { self.notification = notification }
    var value: NotificationDTO { notification }
}

/// Some of a person's notifications were read (on any of their devices); only they see it.
struct NotificationsRead: DomainEvent {
    static let type = EventType.notificationsRead
    var ids: [String]
    var unreadCount: Int

    enum CodingKeys: String, CodingKey {
        case ids
        case unreadCount = "unread_count"
    }
}

struct NotificationDTO: Codable, Sendable, Equatable {
    var id: String
    var kind: UserNotification.Kind
    var conversationID: String
    var messageID: String?
    var messageSeq: Int?
    var runID: String?
    var actorID: String?
    var excerpt: String?
    var createdAt: Date
    var readAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, kind, excerpt
        case conversationID = "conversation_id"
        case messageID = "message_id"
        case messageSeq = "message_seq"
        case runID = "run_id"
        case actorID = "actor_id"
        case createdAt = "created_at"
        case readAt = "read_at"
    }

    init(_ n: UserNotification) {
        id = n.id.wire
        kind = n.kind
        conversationID = n.conversationID.wire
        messageID = n.messageID?.wire
        messageSeq = n.messageSeq
        runID = n.runID?.wire
        actorID = n.actorID?.wire
        excerpt = n.excerpt
        createdAt = n.createdAt
        readAt = n.readAt
    }
}
