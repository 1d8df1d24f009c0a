import Fluent
import Foundation

/// One unit of background work on the durable queue (an assistant run, a training, a webhook
/// delivery). The `JobQueue` owns this table's SQL.
final class Job: Model, @unchecked Sendable {
    static let schema = "jobs"

    enum State: String, Codable, Sendable, CaseIterable {
        /// Waiting for `run_at`, then for a worker.
        case queued
        /// Claimed by `locked_by` until `lease_expires_at`; a lease that runs out makes the
        /// job claimable again (the worker is presumed dead).
        case running
        case succeeded
        /// Failed `max_attempts` times, or failed permanently: kept for an operator to look at.
        case dead
    }

    // identity
    @ID(key: .id) var id: UUID?
    @Field(key: "queue") var queue: String
    /// At most one job per key, ever (so a retried request or a replayed event enqueues once).
    @OptionalField(key: "dedupe_key") var dedupeKey: String?

    // data
    /// The handler's input, as JSON text.
    @Field(key: "payload") var payload: String
    @Enum(key: "state") var state: State
    /// Claims so far; also the fencing token a worker presents to finish its claim.
    @Field(key: "attempts") var attempts: Int
    @Field(key: "max_attempts") var maxAttempts: Int
    @Field(key: "run_at") var runAt: Date
    @OptionalField(key: "locked_by") var lockedBy: String?
    @OptionalField(key: "lease_expires_at") var leaseExpiresAt: Date?
    @OptionalField(key: "last_error") var lastError: String?

    // timestamps
    @Field(key: "created_at") var createdAt: Date
    @OptionalField(key: "finished_at") var finishedAt: Date?

    init() {}
}
