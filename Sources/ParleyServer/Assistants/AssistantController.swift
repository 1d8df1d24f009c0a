import Fluent
import Vapor

/// `/v1/assistants` (site administrators) and `/v1/runs` (members of the run's conversation).
struct AssistantController: RouteCollection {
    let dependencies: AssistantDependencies
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        let signedIn = routes.grouped(authentication)
        signedIn.post("assistants", use: create)
        signedIn.get("assistants", use: list)
        signedIn.get("assistants", ":assistant_id", use: get)
        signedIn.patch("assistants", ":assistant_id", use: update)
        signedIn.delete("assistants", ":assistant_id", use: delete)
        signedIn.get("runs", ":run_id", use: run)
        signedIn.post("runs", ":run_id", "approval", use: approve)
        signedIn.post("runs", ":run_id", "cancel", use: cancel)
        signedIn.get("conversations", ":conversation_id", "runs", use: runs)
    }

    private func context(_ request: Request) throws -> (AssistantService, AssistantService.Caller) {
        let principal = try request.principal()
        return (dependencies.service(request.db), .init(userID: principal.userID, isAdministrator: principal.role == User.Role.admin.rawValue))
    }

    @Sendable
    func create(_ request: Request) async throws -> Response {
        let (service, caller) = try context(request)
        let created = try await service.create(try request.decodeJSON(AssistantInput.self), by: caller)
        let response = try await created.encodeResponse(status: .created, for: request)
        response.headers.replaceOrAdd(name: .location, value: "/v1/assistants/\(created.id)")
        return response
    }

    @Sendable
    func list(_ request: Request) async throws -> Page<AssistantDTO> {
        let (service, caller) = try context(request)
        return Page(items: try await service.list(by: caller), nextCursor: nil)
    }

    @Sendable
    func get(_ request: Request) async throws -> AssistantDTO {
        let (service, caller) = try context(request)
        return try await service.get(try request.idParameter("assistant_id", orThrow: AssistantError.assistantNotFound), by: caller)
    }

    @Sendable
    func update(_ request: Request) async throws -> AssistantDTO {
        let (service, caller) = try context(request)
        let id = try request.idParameter("assistant_id", orThrow: AssistantError.assistantNotFound)
        return try await service.update(id, try request.decodeJSON(AssistantInput.self), by: caller)
    }

    @Sendable
    func delete(_ request: Request) async throws -> HTTPStatus {
        let (service, caller) = try context(request)
        try await service.delete(try request.idParameter("assistant_id", orThrow: AssistantError.assistantNotFound), by: caller)
        return .noContent
    }

    @Sendable
    func run(_ request: Request) async throws -> RunDetailDTO {
        let (service, caller) = try context(request)
        return try await service.run(try request.idParameter("run_id", orThrow: AssistantError.runNotFound), by: caller)
    }

    @Sendable
    func approve(_ request: Request) async throws -> RunDTO {
        let (service, caller) = try context(request)
        let id = try request.idParameter("run_id", orThrow: AssistantError.runNotFound)
        return try await service.decide(id, try request.decodeJSON(ApprovalInput.self), by: caller)
    }

    @Sendable
    func cancel(_ request: Request) async throws -> RunDTO {
        let (service, caller) = try context(request)
        return try await service.cancel(try request.idParameter("run_id", orThrow: AssistantError.runNotFound), by: caller)
    }

    @Sendable
    func runs(_ request: Request) async throws -> Page<RunDTO> {
        let (service, caller) = try context(request)
        let conversationID = try request.idParameter("conversation_id", orThrow: ConversationError.conversationNotFound)
        let limit = try request.pageLimit(default: 20, range: 1...100)
        var cursor: Date?
        if let raw = request.query[String.self, at: "cursor"] {
            guard let seconds = Double(raw) else {
                throw ValidationError([FieldError(field: "cursor", code: "invalid", message: "is not a cursor this server issued")])
            }
            cursor = Date(timeIntervalSince1970: seconds)
        }
        return try await service.runs(in: conversationID, before: cursor, limit: limit, by: caller)
    }
}

/// What the assistants feature shares, built once in `configure`.
struct AssistantDependencies: Sendable {
    let writes: WriteGate
    let clock: AppClock
    let catalog: ModelCatalog
    let registry: RunRegistry
    let mcp: MCPServers

    func service(_ db: any Database) -> AssistantService {
        AssistantService(db: db, writes: writes, clock: clock, catalog: catalog, registry: registry, mcpServers: mcp.names)
    }
}
