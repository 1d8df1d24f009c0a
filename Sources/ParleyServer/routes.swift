import Foundation
import Vapor

func routes(_ app: Application, accounts: AccountDependencies, chat: ChatDependencies, hub: EventHub, ephemeral: EphemeralBus,
            presence: Presence, metrics: HTTPMetrics) throws {
    // Operations: liveness, readiness, metrics, the API contract.
    try app.register(collection: HealthController(metrics: metrics, openAPIDocument: OpenAPIDocument.load()))

    let v1 = app.grouped("v1")

    // Accounts.
    try v1.register(collection: AuthController(dependencies: accounts))
    try v1.register(collection: MeController(dependencies: accounts))

    // Conversations, messages, people and search.
    let authentication = accounts.authentication()
    try v1.register(collection: ConversationController(chat: chat, authentication: authentication))
    try v1.register(collection: MessageController(chat: chat, authentication: authentication))
    try v1.register(collection: UserController(authentication: authentication))
    try v1.register(collection: SearchController(authentication: authentication))

    // Real-time events.
    try v1.register(collection: RealtimeController(
        hub: hub, authentication: authentication, clock: accounts.clock, writes: chat.writes,
        connections: ConnectionLimiter(limit: accounts.settings.maxConnectionsPerUser), chat: chat, presence: presence,
        allowedOrigins: accounts.settings.allowedOrigins, ephemeral: ephemeral))
    try v1.register(collection: PresenceController(presence: presence, authentication: authentication))

    // The web client, when this build has one.
    if let assets = try WebAssets.bundled() {
        app.storage[WebAssetsKey.self] = assets
        try app.register(collection: WebClientController(assets: assets))
    }
}

/// The bundled `openapi.yaml` (the same file as the repository root's, which links to it).
enum OpenAPIDocument {
    static func load() -> ByteBuffer? {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
              let data = try? Data(contentsOf: url)
        else { return nil }
        return ByteBuffer(data: data)
    }
}
