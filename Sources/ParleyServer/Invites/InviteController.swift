import Fluent
import Vapor

/// `/v1/invites` (make, list, revoke) and `/v1/join/{token}` (what a link leads to, for
/// anyone; using it, signed in).
struct InviteController: RouteCollection {
    let dependencies: InviteDependencies
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        let signedIn = routes.grouped(authentication)
        signedIn.post("invites", use: create)
        signedIn.get("invites", use: list)
        signedIn.delete("invites", ":invite_id", use: revoke)
        routes.get("join", ":token", use: lookup)
        signedIn.post("join", ":token", use: accept)
    }

    @Sendable
    func create(_ request: Request) async throws -> Response {
        let created = try await dependencies.service(request.db).create(try request.decodeJSON(CreateInviteRequest.self),
                                                                        by: try request.principal())
        return try await InviteDTO(created.invite, token: created.token, title: nil).encodeResponse(status: .created, for: request)
    }

    @Sendable
    func list(_ request: Request) async throws -> Page<InviteDTO> {
        let invites = try await dependencies.service(request.db).list(by: try request.principal())
        return Page(items: invites.map { InviteDTO($0, token: nil, title: nil) }, nextCursor: nil)
    }

    @Sendable
    func revoke(_ request: Request) async throws -> HTTPStatus {
        let id = try request.idParameter("invite_id", orThrow: InviteError.notFound)
        try await dependencies.service(request.db).revoke(id, by: try request.principal())
        return .noContent
    }

    @Sendable
    func lookup(_ request: Request) async throws -> InviteDTO {
        let token = try request.parameters.require("token")
        let (invite, title) = try await dependencies.service(request.db).lookup(token)
        var dto = InviteDTO(invite, token: nil, title: title)
        dto.registrationNeedsInvite = dependencies.registrationNeedsInvite
        return dto
    }

    @Sendable
    func accept(_ request: Request) async throws -> AcceptedInviteDTO {
        let token = try request.parameters.require("token")
        let conversationID = try await dependencies.service(request.db).accept(token, userID: try request.principal().userID)
        return AcceptedInviteDTO(conversationID: conversationID?.wire)
    }
}

struct InviteDependencies: Sendable {
    let writes: WriteGate
    let clock: AppClock
    let chat: ChatDependencies
    let registrationNeedsInvite: Bool

    func service(_ db: any Database) -> InviteService {
        InviteService(db: db, writes: writes, clock: clock, chat: chat)
    }
}

struct CreateInviteRequest: Decodable {
    var conversationID: String?
    var maxUses: Int?
    var expiresIn: TimeInterval?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case conversationID = "conversation_id"
        case maxUses = "max_uses"
        case expiresIn = "expires_in"
    }

    init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        conversationID = try container.decodeIfPresent(String.self, forKey: .conversationID)
        maxUses = try container.decodeIfPresent(Int.self, forKey: .maxUses)
        expiresIn = try container.decodeIfPresent(TimeInterval.self, forKey: .expiresIn)
    }
}

struct InviteDTO: Content {
    var id: String
    /// Only when it is made: the token is not stored and cannot be shown again.
    var token: String?
    var conversationID: String?
    var conversationTitle: String?
    var createdBy: String
    var maxUses: Int?
    var uses: Int
    var expiresAt: Date?
    var revokedAt: Date?
    var createdAt: Date
    var registrationNeedsInvite: Bool?

    enum CodingKeys: String, CodingKey {
        case id, token, uses
        case conversationID = "conversation_id"
        case conversationTitle = "conversation_title"
        case createdBy = "created_by"
        case maxUses = "max_uses"
        case expiresAt = "expires_at"
        case revokedAt = "revoked_at"
        case createdAt = "created_at"
        case registrationNeedsInvite = "registration_needs_invite"
    }

    init(_ invite: Invite, token: String?, title: String?) {
        id = invite.id.wire
        self.token = token
        conversationID = invite.conversationID?.wire
        conversationTitle = title
        createdBy = invite.createdBy.wire
        maxUses = invite.maxUses
        uses = invite.uses
        expiresAt = invite.expiresAt
        revokedAt = invite.revokedAt
        createdAt = invite.createdAt
    }
}

struct AcceptedInviteDTO: Content {
    var conversationID: String?
    enum CodingKeys: String, CodingKey { case conversationID = "conversation_id" }
}
