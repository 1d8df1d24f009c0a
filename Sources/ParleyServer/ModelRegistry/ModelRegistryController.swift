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
            model.get("versions", ":version", "charts", ":chart", use: versionChart)
            model.get("charts", "drift.svg", use: driftChart)
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
        var items: [ModelDTO] = []
        let (service, _, _) = try context(request)
        for name in ModelRegistryService.models.sorted() {
            items.append(try await model(name, service: service, on: request.db))
        }
        return Page(items: items, nextCursor: nil)
    }

    private func model(_ name: String, service: ModelRegistryService, on db: any Database) async throws -> ModelDTO {
        let summaries = try await ModelVersion.versions(of: name, on: db)
        let live = try await service.liveOutcomes(of: name)
        let versions = try summaries.map { try ModelVersionDTO($0, withReport: false, live: live["\(name)@\($0.version)"]) }
        let serving = registry.serving.snapshot()[name] ?? [:]
        let drift = serving[.production].flatMap { registry.serving.drift.report(for: $0) }
        let shadowVersion = summaries.first { $0.stage == ModelVersion.Stage.shadow.rawValue }
        var shadow: ShadowComparison?
        if let shadowVersion {
            shadow = try await service.shadowComparison(of: "\(name)@\(shadowVersion.version)")
        }
        let advice = ModelAdvice.advise(
            summaries.compactMap { summary in
                ModelVersion.Stage(rawValue: summary.stage).map {
                    ModelAdvice.Version(id: summary.id, label: "\(name)@\(summary.version)", stage: $0, previousID: summary.previous_id)
                }
            },
            live: live, drift: drift)
        return ModelDTO(name: name, versions: versions, serving: serving.reduce(into: [:]) { $0[$1.key.rawValue] = $1.value },
                        drift: drift, shadow: shadow, advice: advice)
    }

    @Sendable
    func show(_ request: Request) async throws -> ModelDTO {
        let (service, _, name) = try context(request)
        try ModelRegistryService.requireModel(name)
        return try await model(name, service: service, on: request.db)
    }

    @Sendable
    func version(_ request: Request) async throws -> ModelVersionDTO {
        let (service, _, name) = try context(request)
        try ModelRegistryService.requireModel(name)
        let summary = try await summary(of: name, request)
        let label = "\(name)@\(summary.version)"
        var dto = try ModelVersionDTO(summary, withReport: true, live: try await service.liveOutcomes(of: name)[label])
        dto.shadow = try await service.shadowComparison(of: label)
        dto.drift = registry.serving.drift.report(for: label)
        return dto
    }

    private func summary(of name: String, _ request: Request) async throws -> ModelVersion.Summary {
        guard let summary = try await ModelVersion.summary(name: name, version: try versionNumber(request), on: request.db) else {
            throw ModelRegistryError.versionNotFound
        }
        return summary
    }

    /// `GET …/versions/{v}/charts/{chart}.svg`: a picture of the version's evaluation report.
    @Sendable
    func versionChart(_ request: Request) async throws -> Response {
        let (_, _, name) = try context(request)
        try ModelRegistryService.requireModel(name)
        let raw = request.parameters.get("chart") ?? ""
        guard raw.hasSuffix(".svg"), let chart = ModelCharts.Chart(rawValue: String(raw.dropLast(4))) else {
            throw ModelRegistryError.chartNotFound(ModelCharts.Chart.allCases.map { "\($0.rawValue).svg" }.joined(separator: ", "))
        }
        let summary = try await summary(of: name, request)
        let report = try ModelVersionDTO.reportDecoder.decode(EvaluationReport.self, from: Data(summary.report.utf8))
        return svg(ModelCharts.draw(chart, of: report, version: "\(name)@\(summary.version)"))
    }

    /// `GET …/charts/drift.svg`: production's drift on this node (404 before it has scored).
    @Sendable
    func driftChart(_ request: Request) async throws -> Response {
        let (_, _, name) = try context(request)
        try ModelRegistryService.requireModel(name)
        guard let label = registry.serving.snapshot()[name]?[.production], let report = registry.serving.drift.report(for: label) else {
            throw ModelRegistryError.noDrift(name)
        }
        return svg(ModelCharts.drift(report))
    }

    private func svg(_ text: String) -> Response {
        var headers = HTTPHeaders()
        headers.contentType = HTTPMediaType(type: "image", subType: "svg+xml", parameters: ["charset": "utf-8"])
        headers.cacheControl = .init(noStore: true)
        return Response(status: .ok, headers: headers, body: .init(string: text))
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
        return try ModelVersionDTO(summary, withReport: false, live: try await service.liveOutcomes(of: name)["\(name)@\(version)"])
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
        let live = try await service.liveOutcomes(of: name)
        return RollbackResponse(rolledBack: try ModelVersionDTO(old, withReport: false, live: live["\(name)@\(old.version)"]),
                                production: try ModelVersionDTO(new, withReport: false, live: live["\(name)@\(new.version)"]))
    }
}
