import Fluent
import Vapor

/// A message's previous body, kept on every edit (and purged when the message is deleted).
final class MessageRevision: Model, @unchecked Sendable {
    static let schema = "message_revisions"

    @ID(key: .id) var id: UUID?
    @Parent(key: "message_id") var message: Message
    @Field(key: "body") var body: String
    @Field(key: "created_at") var createdAt: Date

    init() {}

    init(messageID: UUID, body: String, at now: Date) {
        self.$message.id = messageID
        self.body = body
        self.createdAt = now
    }
}
