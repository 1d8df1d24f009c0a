import Vapor

/// A user as others see them (no email).
struct PublicUserDTO: Content, Equatable {
    var id: String
    var handle: String
    var displayName: String
    var kind: User.Kind

    enum CodingKeys: String, CodingKey {
        case id, handle, kind
        case displayName = "display_name"
    }

    init(_ user: User) throws {
        id = try user.requireID().wire
        handle = user.handle
        displayName = user.displayName
        kind = user.kind
    }
}
