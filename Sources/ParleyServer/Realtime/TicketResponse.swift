import Fluent
import SQLKit
import Vapor

struct TicketResponse: Content {
    var ticket: String
    var expiresIn: Int
    enum CodingKeys: String, CodingKey {
        case ticket
        case expiresIn = "expires_in"
    }
}
