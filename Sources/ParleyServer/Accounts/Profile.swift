import Fluent
import Vapor

/// One-to-one with `User`: what a person says about themselves.
final class Profile: Model, @unchecked Sendable {
    static let schema = "profiles"

    // identity
    @ID(key: .id) var id: UUID?
    @Parent(key: "user_id") var user: User

    // data
    @Field(key: "bio") var bio: String
    @OptionalField(key: "time_zone") var timeZone: String?

    // timestamps
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    init(userID: UUID, bio: String = "", timeZone: String? = nil) {
        self.$user.id = userID
        self.bio = bio
        self.timeZone = timeZone
    }
}
