import Crypto
import Fluent
import Vapor

/// `/v1/push`: the server's VAPID key, and the browsers a person receives Web Push on.
struct PushController: RouteCollection {
    let settings: Settings.WebPush?
    let key: VAPIDKey?
    let writes: WriteGate
    let clock: AppClock
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        let push = routes.grouped(authentication).grouped("push")
        push.get(use: status)
        push.post("subscriptions", use: subscribe)
        push.get("subscriptions", use: list)
        push.delete("subscriptions", ":subscription_id", use: unsubscribe)
    }

    @Sendable
    func status(_ request: Request) async throws -> PushStatusDTO {
        PushStatusDTO(enabled: settings != nil, publicKey: settings == nil ? nil : key?.publicKeyBase64URL)
    }

    @Sendable
    func subscribe(_ request: Request) async throws -> Response {
        let userID = try request.principal().userID
        guard let settings else { throw Self.disabled }
        let input = try request.decodeJSON(SubscribeRequest.self)
        var validator = Validator()
        var endpoint: String?
        if let url = URL(string: input.endpoint), input.endpoint.utf8.count <= 2048, url.host?.isEmpty == false,
           url.scheme == "https" || (url.scheme == "http" && settings.allowHTTPEndpoints) {
            endpoint = input.endpoint
        } else {
            validator.add("endpoint", "invalid", settings.allowHTTPEndpoints ? "must be an http or https URL" : "must be an https URL")
        }
        let p256dh = Data(base64URLEncoded: input.keys.p256dh)
        if p256dh.flatMap({ try? P256.KeyAgreement.PublicKey(x963Representation: $0) }) == nil {
            validator.add("keys.p256dh", "invalid", "must be the browser's P-256 public key, base64url")
        }
        let auth = Data(base64URLEncoded: input.keys.auth)
        if auth?.count != 16 { validator.add("keys.auth", "invalid", "must be the browser's 16-byte secret, base64url") }
        try validator.check()
        guard let endpoint, let p256dh, let auth else { throw ProblemError.badRequest("Invalid subscription.") }
        let subscription = PushSubscription(id: UUID.timeOrdered(), userID: userID, endpoint: endpoint, p256dh: p256dh, auth: auth, createdAt: clock.now())
        let stored = try await request.db.writeTransaction(writes) { tx in try await PushSubscription.upsert(subscription, on: tx) }
        return try await PushSubscriptionDTO(stored).encodeResponse(status: .created, for: request)
    }

    @Sendable
    func list(_ request: Request) async throws -> Page<PushSubscriptionDTO> {
        let subscriptions = try await PushSubscription.all(of: try request.principal().userID, on: request.db)
        return Page(items: subscriptions.map(PushSubscriptionDTO.init), nextCursor: nil)
    }

    @Sendable
    func unsubscribe(_ request: Request) async throws -> HTTPStatus {
        let userID = try request.principal().userID
        let notFound = ProblemError.notFound("No such subscription.")
        let id = try request.idParameter("subscription_id", orThrow: notFound)
        guard try await request.db.writeTransaction(writes, { tx in try await PushSubscription.delete(id, of: userID, on: tx) }) else {
            throw notFound
        }
        return .noContent
    }

    static let disabled = ProblemError(.notFound, slug: "push-disabled",
                                       detail: "Web Push is not enabled on this server (PARLEY_PUSH_SUBJECT).")
}

/// A browser's `PushSubscription.toJSON()`.
struct SubscribeRequest: Decodable {
    struct Keys: Decodable {
        var p256dh: String
        var auth: String
    }

    var endpoint: String
    var keys: Keys
    /// Sent by browsers; push services expire subscriptions themselves (410), so it is not kept.
    var expirationTime: Double?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case endpoint, keys, expirationTime
    }

    init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        endpoint = try container.decode(String.self, forKey: .endpoint)
        keys = try container.decode(Keys.self, forKey: .keys)
        expirationTime = try container.decodeIfPresent(Double.self, forKey: .expirationTime)
    }
}

struct PushStatusDTO: Content {
    var enabled: Bool
    /// The VAPID key browsers subscribe with (`applicationServerKey`), base64url.
    var publicKey: String?

    enum CodingKeys: String, CodingKey {
        case enabled
        case publicKey = "public_key"
    }
}

struct PushSubscriptionDTO: Content {
    var id: String
    var endpoint: String
    var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case id, endpoint
        case createdAt = "created_at"
    }

    init(_ subscription: PushSubscription) {
        id = subscription.id.wire
        endpoint = subscription.endpoint
        createdAt = subscription.createdAt
    }
}
