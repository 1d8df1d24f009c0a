import Fluent
import Foundation
import SQLKit
import Vapor

/// `GET /v1/presence`: who among the people the caller shares a conversation with is online
/// or away right now (a client's starting point; changes then arrive as `presence` frames).
struct PresenceController: RouteCollection {
    let presence: Presence
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        routes.grouped(authentication).get("presence", use: list)
    }

    struct Entry: Content {
        var userID: String
        var status: String
        enum CodingKeys: String, CodingKey {
            case userID = "user_id"
            case status
        }
    }

    struct Listing: Content {
        var enabled: Bool
        var users: [Entry]
    }

    @Sendable
    func list(_ request: Request) async throws -> Listing {
        let principal = try request.principal()
        guard presence.options.enabled else { return Listing(enabled: false, users: []) }
        let peers = try await Membership.peers(of: principal.userID, on: request.db)
        let statuses = await presence.statuses(of: peers)
        let users = statuses.map { Entry(userID: $0.key.wire, status: $0.value.rawValue) }.sorted { $0.userID < $1.userID }
        return Listing(enabled: true, users: users)
    }
}
