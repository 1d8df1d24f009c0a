import Fluent
import SQLKit
import Vapor

/// One entry of the replayable log clients sync from. Written in the same transaction as the
/// change it describes, so a change and its event commit together or not at all.
final class Event: Model, @unchecked Sendable {
    static let schema = "events"

    // identity
    @ID(custom: "id", generatedBy: .database) var id: Int?

    // data
    @Field(key: "conversation_id") var conversationID: UUID
    /// When set, only this user may see the event (their read marker, for example).
    @OptionalField(key: "user_id") var userID: UUID?
    @Field(key: "type") var type: String
    /// The event's data as JSON text.
    @Field(key: "payload") var payload: String

    // timestamps
    @Field(key: "created_at") var createdAt: Date

    init() {}

    init(conversationID: UUID, userID: UUID?, type: EventType, payload: String, at now: Date) {
        self.conversationID = conversationID
        self.userID = userID
        self.type = type.rawValue
        self.payload = payload
        self.createdAt = now
    }
}
