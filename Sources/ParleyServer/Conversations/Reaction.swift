import Fluent
import Vapor

/// One user's emoji on one message; unique per message, user and emoji.
final class Reaction: Model, @unchecked Sendable {
    static let schema = "reactions"

    @ID(key: .id) var id: UUID?
    @Parent(key: "message_id") var message: Message
    @Parent(key: "user_id") var user: User
    @Field(key: "emoji") var emoji: String
    @Field(key: "created_at") var createdAt: Date

    init() {}

    init(messageID: UUID, userID: UUID, emoji: String, at now: Date) {
        self.$message.id = messageID
        self.$user.id = userID
        self.emoji = emoji
        self.createdAt = now
    }
}
