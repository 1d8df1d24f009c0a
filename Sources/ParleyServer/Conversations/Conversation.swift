import Fluent
import Vapor

final class Conversation: Model, @unchecked Sendable {
    static let schema = "conversations"

    enum Kind: String, Codable, Sendable, CaseIterable { case direct, group, channel }
    enum Visibility: String, Codable, Sendable, CaseIterable { case `public`, `private` }

    // identity
    @ID(key: .id) var id: UUID?

    // data
    @Enum(key: "kind") var kind: Kind
    /// Channels only.
    @OptionalEnum(key: "visibility") var visibility: Visibility?
    @OptionalField(key: "title") var title: String?
    @OptionalField(key: "topic") var topic: String?
    /// The highest message seq handed out; the next message gets `last_seq + 1`.
    @Field(key: "last_seq") var lastSeq: Int
    /// For direct conversations: the two member ids, sorted and joined; unique, so a pair has one.
    @OptionalField(key: "direct_key") var directKey: String?
    @Parent(key: "created_by") var creator: User
    @Siblings(through: Membership.self, from: \.$conversation, to: \.$user) var members: [User]

    // timestamps
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?
    /// The newest message's time (or creation); the conversation list is ordered by it.
    @Field(key: "last_activity_at") var lastActivityAt: Date
    @Timestamp(key: "deleted_at", on: .delete) var deletedAt: Date?

    init() {}

    init(id: UUID = UUID.timeOrdered(), kind: Kind, visibility: Visibility?, title: String?, topic: String?,
         directKey: String?, creatorID: UUID, at now: Date) {
        self.id = id
        self.kind = kind
        self.visibility = visibility
        self.title = title
        self.topic = topic
        self.lastSeq = 0
        self.directKey = directKey
        self.$creator.id = creatorID
        self.lastActivityAt = now
    }

    var isPublicChannel: Bool { kind == .channel && visibility == .public }

    static func directKey(_ a: UUID, _ b: UUID) -> String {
        [a.wire, b.wire].sorted().joined(separator: ":")
    }
}
