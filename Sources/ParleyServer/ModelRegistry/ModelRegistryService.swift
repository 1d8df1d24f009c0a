import Fluent
import Foundation
import Learning
import NIOPosix
import Vapor

/// Training, versions and stages of the models Parley trains itself, independent of HTTP.
struct ModelRegistryService: Sendable {
    /// The models this server trains.
    static let models: Set<String> = ["moderation"]
    static let trainQueue = "models.train"

    let db: any Database
    let writes: WriteGate
    let clock: AppClock
    let signals: SignalBus

    struct Caller: Sendable {
        let userID: UUID?
        let isAdministrator: Bool
    }

    static func requireModel(_ name: String) throws {
        guard models.contains(name) else { throw ModelRegistryError.unknownModel(name) }
    }

    private static func requireAdministrator(_ caller: Caller) throws {
        guard caller.isAdministrator else { throw ModelRegistryError.notAnAdministrator }
    }

    // MARK: Examples and training

    /// Adds labelled examples (seed data); returns how many.
    func addExamples(_ examples: [(text: String, label: Bool)], to name: String, caller: Caller) async throws -> Int {
        try Self.requireAdministrator(caller)
        try Self.requireModel(name)
        let now = clock.now()
        let rows = examples.map {
            TrainingExample.New(text: $0.text, label: $0.label, source: .seed, key: TrainingExample.seedKey(text: $0.text, label: $0.label))
        }
        return try await db.writeTransaction(writes) { tx, _ in
            try await TrainingExample.upsert(rows, model: name, at: now, on: tx)
        }
    }

    struct TrainJob: Codable, Sendable {
        var name: String
        var requestedBy: UUID?
    }

    /// Queues a training run; returns the job's id.
    func requestTraining(of name: String, caller: Caller) async throws -> UUID {
        try Self.requireAdministrator(caller)
        try Self.requireModel(name)
        let (positive, negative) = try await TrainingExample.counts(of: name, on: db)
        if positive < ModelTrainer.minimumPerClass || negative < ModelTrainer.minimumPerClass {
            throw ModelRegistryError.tooFewExamples(ModelTrainer.Failure.tooFewExamples(positive: positive, negative: negative).description)
        }
        let now = clock.now()
        let payload = String(decoding: try EventLog.encoder.encode(TrainJob(name: name, requestedBy: caller.userID)), as: UTF8.self)
        let id: UUID? = try await db.writeTransaction(writes) { _, outbox in
            try await JobQueue.enqueue(.init(queue: Self.trainQueue, payload: payload, maxAttempts: 2), at: now, in: outbox)
        }
        guard let id else { throw ModelRegistryError.versionNotFound }
        return id
    }

    /// Trains a new candidate version from every example the model has (the job, and
    /// `parley model train`). The training itself runs on `pool`, off the event loops.
    func train(_ name: String, requestedBy: UUID?, pool: NIOThreadPool) async throws -> ModelVersion {
        try Self.requireModel(name)
        let examples = try await TrainingExample.all(of: name, on: db)
        let trained: ModelTrainer.Trained
        do {
            trained = try await pool.runIfActive { try ModelTrainer.train(examples) }
        } catch let failure as ModelTrainer.Failure {
            throw ModelRegistryError.tooFewExamples(failure.description)
        }
        let artifact = try ModelFile.encode(trained.classifier)
        let report = String(decoding: try ModelVersionDTO.reportEncoder.encode(trained.report), as: UTF8.self)
        let hyperparameters = String(decoding: try EventLog.encoder.encode(trained.hyperparameters), as: UTF8.self)
        let now = clock.now()
        return try await db.writeTransaction(writes) { tx, _ in
            let version = try await ModelVersion.nextVersion(of: name, on: tx)
            let model = ModelVersion(name: name, version: version, algorithm: ModelTrainer.algorithm, hyperparameters: hyperparameters,
                                     dataHash: trained.dataHash, exampleCount: examples.count, report: report, trainedBy: requestedBy,
                                     artifact: artifact, at: now)
            try await model.create(on: tx)
            try await AuditLog.record(actor: requestedBy, action: "model.trained", subject: "model:\(model.label)",
                                      reason: nil, at: now, on: tx)
            return model
        }
    }

    // MARK: Stages

    /// Puts a version in a stage: production, canary and shadow each hold one version of a
    /// model, so the one there is archived in the same transaction (production's is kept as
    /// the new one's `previous` for rollback). The artifact is checked first: a damaged one
    /// never serves. Every node hears of it through the `models` signal.
    func setStage(_ stage: ModelVersion.Stage, name: String, version: Int, note: String?, caller: Caller) async throws -> ModelVersion {
        try Self.requireAdministrator(caller)
        try Self.requireModel(name)
        guard let target = try await ModelVersion.find(name: name, version: version, on: db) else { throw ModelRegistryError.versionNotFound }
        if [.production, .canary, .shadow].contains(stage) {
            _ = try ModelServing.open(target.artifact, checksum: target.checksum)
        }
        let now = clock.now()
        let changed: ModelVersion = try await db.writeTransaction(writes) { tx, _ in
            guard let target = try await ModelVersion.find(name: name, version: version, on: tx) else { throw ModelRegistryError.versionNotFound }
            guard target.stage != stage else { return target }
            if [.production, .canary, .shadow].contains(stage) {
                let replaced = try await ModelVersion.vacate(stage, of: name, at: now, on: tx)
                if stage == .production { target.previousID = replaced?.id ?? target.previousID }
            }
            target.stage = stage
            target.stageChangedAt = now
            target.note = note
            try await target.save(on: tx)
            try await AuditLog.record(actor: caller.userID, action: "model.stage.\(stage.rawValue)", subject: "model:\(target.label)",
                                      reason: note, at: now, on: tx)
            return target
        }
        await signals.signal(ModelServing.signal)
        return changed
    }

    /// Puts production's predecessor back in production and archives production with the
    /// reason, in one transaction.
    func rollback(_ name: String, reason: String, caller: Caller) async throws -> (rolledBack: ModelVersion, production: ModelVersion) {
        try Self.requireAdministrator(caller)
        try Self.requireModel(name)
        // The predecessor's artifact is checked before the write transaction, not inside it
        // (decoding a model takes far longer than the writes).
        let (checkedCurrent, checkedPrevious) = try await Self.rollbackPair(of: name, on: db)
        _ = try ModelServing.open(checkedPrevious.artifact, checksum: checkedPrevious.checksum)
        let currentID = checkedCurrent.id, previousID = checkedPrevious.id, checkedChecksum = checkedPrevious.checksum
        let now = clock.now()
        let result: (ModelVersion, ModelVersion) = try await db.writeTransaction(writes) { tx, _ in
            let (current, previous) = try await Self.rollbackPair(of: name, on: tx)
            guard current.id == currentID, previous.id == previousID, previous.checksum == checkedChecksum else {
                throw ModelRegistryError.nothingToRollBack("the registry changed meanwhile; try again")
            }
            current.stage = .archived
            current.stageChangedAt = now
            current.note = "rolled back: \(reason)"
            try await current.save(on: tx)
            // The predecessor may sit in another stage (a canary of it, say): it leaves that one.
            previous.stage = .production
            previous.stageChangedAt = now
            previous.note = "restored by rolling back \(current.label)"
            try await previous.save(on: tx)
            try await AuditLog.record(actor: caller.userID, action: "model.rollback", subject: "model:\(current.label)",
                                      reason: reason, at: now, on: tx)
            return (current, previous)
        }
        await signals.signal(ModelServing.signal)
        return result
    }

    // MARK: Watching

    /// How each version did on the messages moderators reviewed, by version label.
    func liveOutcomes(of name: String) async throws -> [String: LiveOutcomes] {
        try Self.requireModel(name)
        return try await TrainingExample.liveOutcomes(of: name, threshold: ModelTrainer.threshold, on: db)
    }

    /// A shadow version's comparison with production (nil before it scored a message).
    func shadowComparison(of label: String) async throws -> ShadowComparison? {
        try await ShadowScore.comparison(of: label, threshold: ModelTrainer.threshold, disagreements: 20, on: db)
    }

    /// The version in production and the one it replaced.
    private static func rollbackPair(of name: String, on db: any Database) async throws -> (current: ModelVersion, previous: ModelVersion) {
        guard let current = try await ModelVersion.query(on: db).filter(\.$name == name).filter(\.$stage == .production).first() else {
            throw ModelRegistryError.nothingToRollBack("\(name) has no version in production")
        }
        guard let previousID = current.previousID, let previous = try await ModelVersion.find(previousID, on: db) else {
            throw ModelRegistryError.nothingToRollBack("\(current.label) replaced no earlier version")
        }
        return (current, previous)
    }
}

/// Runs `models.train` jobs.
struct ModelTrainingJobs: Sendable {
    let writes: WriteGate
    let clock: AppClock
    let signals: SignalBus
    let pool: NIOThreadPool
    let logger: Logger

    func handle(_ job: JobQueue.ClaimedJob, on db: any Database) async throws {
        let request = try job.decode(ModelRegistryService.TrainJob.self)
        let service = ModelRegistryService(db: db, writes: writes, clock: clock, signals: signals)
        do {
            let model = try await service.train(request.name, requestedBy: request.requestedBy, pool: pool)
            logger.info("model trained", metadata: ["model": .string(model.label)])
        } catch let error as ModelRegistryError {
            throw PermanentJobFailure(reason: String(describing: error))
        }
    }
}
