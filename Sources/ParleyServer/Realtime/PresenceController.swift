import Fluent
import Foundation
import SQLKit
import Vapor

/// `GET /v1/presence`: who is online or away right now, among the people the caller hears
/// about on the event stream (those sharing a conversation of at most the push limit's size
/// with the caller), or among `user_ids` (anyone sharing a conversation of any size).
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
        var pushLimit: Int
        var users: [Entry]
        enum CodingKeys: String, CodingKey {
            case enabled, users
            case pushLimit = "push_limit"
        }
    }

    @Sendable
    func list(_ request: Request) async throws -> Listing {
        let principal = try request.principal()
        let named = try Self.userIDs(request.query[String.self, at: "user_ids"])
        let limit = presence.options.pushLimit
        guard presence.options.enabled else { return Listing(enabled: false, pushLimit: limit, users: []) }
        let visible = if let named {
            try await Membership.sharing(with: principal.userID, among: named, on: request.db)
        } else {
            try await Membership.peers(of: principal.userID, inConversationsUpTo: limit, on: request.db)
        }
        let statuses = await presence.statuses(of: visible)
        let users = statuses.map { Entry(userID: $0.key.wire, status: $0.value.rawValue) }.sorted { $0.userID < $1.userID }
        return Listing(enabled: true, pushLimit: limit, users: users)
    }

    /// `user_ids`: user ids separated by commas (`Presence.watchList`).
    static func userIDs(_ raw: String?) throws -> Set<UUID>? {
        guard let raw else { return nil }
        do {
            return try Presence.watchList(raw.split(separator: ",", omittingEmptySubsequences: true))
        } catch {
            throw ProblemError.validation(field: "user_ids", code: error.code, message: error.message)
        }
    }
}
