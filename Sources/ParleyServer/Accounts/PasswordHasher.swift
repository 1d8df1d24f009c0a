import NIOConcurrencyHelpers
import Fluent
import SQLKit
import Vapor

/// bcrypt off the event loop, on the application's thread pool.
struct PasswordHasher: Sendable {
    let cost: Int
    let threadPool: NIOThreadPool
    /// A hash of a random string at the configured cost, verified when no user matches a
    /// sign-in so that the response time does not reveal whether the handle exists.
    private let decoyHash = NIOLockedValueBox<String?>(nil)

    init(cost: Int, threadPool: NIOThreadPool) {
        self.cost = cost
        self.threadPool = threadPool
    }

    func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await threadPool.runIfActive { try Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, against hash: String) async throws -> Bool {
        try await threadPool.runIfActive { (try? Bcrypt.verify(password, created: hash)) ?? false }
    }

    func decoy() async throws -> String {
        if let hash = decoyHash.withLockedValue({ $0 }) { return hash }
        let hash = try await self.hash(OpaqueToken.generate())
        decoyHash.withLockedValue { $0 = hash }
        return hash
    }
}
