import Fluent
import Vapor
import Foundation

/// What the Files feature is built from (made once in `configure`).
struct FilesDependencies: Sendable {
    let settings: Settings.Files
    let store: any FileStore
    /// Where uploads are written while they arrive.
    let stagingDirectory: String
    let writes: WriteGate
    let clock: AppClock
    let chat: ChatDependencies
    let hooks = UploadHooks()

    func uploads(_ db: any Database) -> UploadService {
        UploadService(db: db, dependencies: self)
    }
}

struct FilesDependenciesKey: StorageKey {
    typealias Value = FilesDependencies
}
