import Fluent
import Vapor

/// `/v1/admin/models…`: the model registry, for site administrators.
struct ModelRegistryController: RouteCollection {
    let registry: ModelRegistryDependencies
    let authentication: AuthenticationMiddleware

    static let maxExamples = 10_000

    func boot(routes: any RoutesBuilder) throws {
        let models = routes.grouped(authentication).grouped("admin", "models")
        models.get(use: list)
        models.group(":name") { model in
            model.get(use: show)
            model.post("train", use: train)
            model.post("examples", use: addExamples)
            model.post("rollback", use: rollback)
            model.get("versions", ":version", use: version)
            model.put("versions", ":version", "stage", use: stage)
        }
    }

    private func context(_ request: Request) throws -> (ModelRegistryService, ModelRegistryService.Caller, String) {
        let principal = try request.principal()
        let caller = ModelRegistryService.Caller(userID: principal.userID, isAdministrator: principal.role == User.Role.admin.rawValue)
        guard caller.isAdministrator else { throw ModelRegistryError.notAnAdministrator }
        let name = request.parameters.get("name") ?? ""
        return (registry.service(request.db), caller, name)
    }

    private func versionNumber(_ request: Request) throws -> Int {
        guard let raw = request.parameters.get("version"), let number = Int(raw), number >= 1 else { throw ModelRegistryError.versionNotFound }
        return number
    }

    @Sendable
    func list(_ request: Request) async throws -> Page<ModelDTO> {
        _ = try context(request)
        var items: [ModelDTO] = []
        for name in ModelRegistryService.models.sorted() {
            items.append(try await model(name, on: request.db))
        }
        return Page(items: items, nextCursor: nil)
    }

    private func model(_ name: String, on db: any Database) async throws -> ModelDTO {
        let versions = try await ModelVersion.versions(of: name, on: db).map { try ModelVersionDTO($0, withReport: false) }
        let serving = (registry.serving.snapshot()[name] ?? [:]).reduce(into: [String: String]()) { $0[$1.key.rawValue] = $1.value }
        return ModelDTO(name: name, versions: versions, serving: serving)
    }

    @Sendable
    func show(_ request: Request) async throws -> ModelDTO {
        let (_, _, name) = try context(request)
        try ModelRegistryService.requireModel(name)
        return try await model(name, on: request.db)
    }

    @Sendable
    func version(_ request: Request) async throws -> ModelVersionDTO {
        let (_, _, name) = try context(request)
        try ModelRegistryService.requireModel(name)
        guard let summary = try await ModelVersion.summary(name: name, version: try versionNumber(request), on: request.db) else {
            throw ModelRegistryError.versionNotFound
        }
        return try ModelVersionDTO(summary, withReport: true)
    }

    @Sendable
    func train(_ request: Request) async throws -> Response {
        let (service, caller, name) = try context(request)
        let job = try await service.requestTraining(of: name, caller: caller)
        return try await TrainingResponse(jobID: job.wire).encodeResponse(status: .accepted, for: request)
    }

    @Sendable
    func addExamples(_ request: Request) async throws -> Response {
        let (service, caller, name) = try context(request)
        let input = try request.decodeJSON(ExamplesRequest.self)
        var validator = Validator()
        if input.examples.isEmpty || input.examples.count > Self.maxExamples {
            validator.add("examples", "count", "give 1-\(Self.maxExamples) examples")
        }
        for (index, example) in input.examples.enumerated() where example.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            || example.text.count > 10_000 {
            validator.add("examples[\(index)].text", "length", "must be 1-10000 characters")
        }
        try validator.check()
        let added = try await service.addExamples(input.examples.map { ($0.text, $0.label) }, to: name, caller: caller)
        return try await ExamplesResponse(added: added).encodeResponse(status: .created, for: request)
    }

    @Sendable
    func stage(_ request: Request) async throws -> ModelVersionDTO {
        let (service, caller, name) = try context(request)
        let input = try request.decodeJSON(StageRequest.self)
        guard let stage = ModelVersion.Stage(rawValue: input.stage) else {
            throw ProblemError.validation(field: "stage", code: "invalid",
                                          message: "must be one of " + ModelVersion.Stage.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let version = try versionNumber(request)
        _ = try await service.setStage(stage, name: name, version: version, note: input.note, caller: caller)
        guard let summary = try await ModelVersion.summary(name: name, version: version, on: request.db) else { throw ModelRegistryError.versionNotFound }
        return try ModelVersionDTO(summary, withReport: false)
    }

    @Sendable
    func rollback(_ request: Request) async throws -> RollbackResponse {
        let (service, caller, name) = try context(request)
        let input = try request.decodeJSON(RollbackRequest.self)
        let reason = input.reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...500).contains(reason.count) else {
            throw ProblemError.validation(field: "reason", code: "length", message: "say why, in 1-500 characters")
        }
        let (rolledBack, production) = try await service.rollback(name, reason: reason, caller: caller)
        guard let old = try await ModelVersion.summary(name: name, version: rolledBack.version, on: request.db),
              let new = try await ModelVersion.summary(name: name, version: production.version, on: request.db)
        else { throw ModelRegistryError.versionNotFound }
        return RollbackResponse(rolledBack: try ModelVersionDTO(old, withReport: false), production: try ModelVersionDTO(new, withReport: false))
    }
}
