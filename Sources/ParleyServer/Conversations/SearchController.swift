import Fluent
import Vapor

/// `/v1/search/messages`: full-text search over the messages the caller may read.
struct SearchController: RouteCollection {
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        routes.grouped(authentication).get("search", "messages", use: search)
    }

    @Sendable
    func search(_ request: Request) async throws -> Page<SearchHitDTO> {
        let principal = try request.principal()
        let limit = try request.pageLimit(default: 20, range: 1...50)
        return try await SearchService(db: request.db).search(
            request.query[String.self, at: "q"], conversationID: request.query[String.self, at: "conversation_id"],
            userID: principal.userID, cursor: request.query[String.self, at: "cursor"], limit: limit)
    }
}
