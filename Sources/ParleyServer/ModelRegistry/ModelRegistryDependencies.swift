import Fluent
import Vapor

/// What the model registry is built from (made once in `configure`).
struct ModelRegistryDependencies: Sendable {
    let writes: WriteGate
    let clock: AppClock
    let signals: SignalBus
    let serving: ModelServing

    func service(_ db: any Database) -> ModelRegistryService {
        ModelRegistryService(db: db, writes: writes, clock: clock, signals: signals)
    }
}

struct ModelRegistryKey: StorageKey {
    typealias Value = ModelRegistryDependencies
}
