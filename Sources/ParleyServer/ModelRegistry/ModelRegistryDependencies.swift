import Fluent
import NIOPosix
import Vapor

/// What the model registry is built from (made once in `configure`).
struct ModelRegistryDependencies: Sendable {
    let writes: WriteGate
    let clock: AppClock
    let signals: SignalBus
    let serving: ModelServing
    /// Training's own thread: never the application's pool, whose threads SQLite's calls need.
    let trainingPool: NIOThreadPool

    func service(_ db: any Database) -> ModelRegistryService {
        ModelRegistryService(db: db, writes: writes, clock: clock, signals: signals)
    }

    /// Trains a new version of `name` on the training thread.
    func train(_ name: String, requestedBy: UUID?, on db: any Database) async throws -> ModelVersion {
        try await service(db).train(name, requestedBy: requestedBy, pool: trainingPool)
    }
}

struct ModelRegistryKey: StorageKey {
    typealias Value = ModelRegistryDependencies
}
