import Fluent
import Vapor

/// `/v1/notifications/email`: whether I get the e-mail digest of what stays unread.
struct EmailDigestController: RouteCollection {
    /// Whether this server sends e-mail at all.
    let available: Bool
    let writes: WriteGate
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        let email = routes.grouped(authentication).grouped("notifications", "email")
        email.get(use: show)
        email.put(use: update)
    }

    @Sendable
    func show(_ request: Request) async throws -> EmailDigestDTO {
        try await dto(for: try request.principal().userID, on: request.db)
    }

    @Sendable
    func update(_ request: Request) async throws -> EmailDigestDTO {
        let userID = try request.principal().userID
        let input = try request.decodeJSON(UpdateEmailDigestRequest.self)
        try await request.db.writeTransaction(writes) { tx in try await EmailDigestSettings.setEnabled(input.enabled, for: userID, on: tx) }
        return try await dto(for: userID, on: request.db)
    }

    private func dto(for userID: UUID, on db: any Database) async throws -> EmailDigestDTO {
        let settings = try await EmailDigestSettings.find(userID, on: db)
        let address = try await User.find(userID, on: db)?.email
        return EmailDigestDTO(enabled: settings.enabled, available: available, address: address, sentThrough: settings.sentThrough)
    }
}

struct UpdateEmailDigestRequest: Decodable {
    var enabled: Bool

    enum CodingKeys: String, CodingKey, CaseIterable {
        case enabled
    }

    init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(allowed: CodingKeys.self)
        enabled = try decoder.container(keyedBy: CodingKeys.self).decode(Bool.self, forKey: .enabled)
    }
}

struct EmailDigestDTO: Content {
    /// I want digests (the default).
    var enabled: Bool
    /// This server sends e-mail (PARLEY_SMTP_URL).
    var available: Bool
    /// Where they go: my account's address (none: no digests).
    var address: String?
    var sentThrough: Date?

    enum CodingKeys: String, CodingKey {
        case enabled, available, address
        case sentThrough = "sent_through"
    }
}
