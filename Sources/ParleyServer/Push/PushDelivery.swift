import AsyncHTTPClient
import Fluent
import Foundation
import Vapor

/// Web Push to people's browsers: a durable follower of the event log (named `push`) turns
/// each new notification into one `push.deliver` job per subscribed browser, in the
/// transaction that moves its cursor; the job encrypts, signs and posts it, retried with
/// back-off while the push service is unavailable, and forgets subscriptions it says are gone.
/// The browser's service worker decides whether to show it (not while a Parley tab has focus).
struct PushDelivery: Sendable {
    static let queue = "push.deliver"

    /// What a push carries (encrypted): what the browser shows and where a click leads.
    struct Message: Codable, Sendable, Equatable {
        var title: String
        var body: String
        var url: String
        var notificationID: String
        /// Pushes with the same tag replace each other on the device (one per conversation).
        var tag: String

        enum CodingKeys: String, CodingKey {
            case title, body, url, tag
            case notificationID = "notification_id"
        }
    }

    struct Job: Codable, Sendable {
        var subscriptionID: String
        var message: Message

        enum CodingKeys: String, CodingKey {
            case message
            case subscriptionID = "subscription_id"
        }
    }

    let sender: WebPushSender
    let writes: WriteGate
    let logger: Logger
    /// Each push's outcome once it is fully handled (a gone subscription deleted), for tests;
    /// only the newest few are kept, so nothing piles up where no one reads them.
    let outcomes: AsyncStream<WebPushSender.Outcome>
    private let outcome: AsyncStream<WebPushSender.Outcome>.Continuation

    init(sender: WebPushSender, writes: WriteGate, logger: Logger) {
        self.sender = sender
        self.writes = writes
        self.logger = logger
        (outcomes, outcome) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(16))
    }

    static func follower(database: @escaping @Sendable () throws -> any Database, writes: WriteGate, domainEvents: DomainEvents,
                         clock: AppClock, logger: Logger) -> LogFollower {
        LogFollower(name: "push", types: [.notificationCreated], database: database, writes: writes, domainEvents: domainEvents,
                    logger: logger) { events, db in
            try await plan(events, on: db, now: clock.now())
        }
    }

    /// The jobs a batch of notifications calls for; nil when none of their people has a
    /// subscribed browser (the common case: no transaction).
    static func plan(_ events: [CommittedEvent], on db: any Database, now: Date) async throws -> LogFollower.Writes? {
        var notifications: [(userID: UUID, notification: NotificationDTO)] = []
        for event in events {
            guard let userID = event.visibleTo,
                  let notification = try? EventLog.decoder.decode(NotificationDTO.self, from: Data(event.payload.utf8))
            else { continue }
            notifications.append((userID, notification))
        }
        let subscribed = try await PushSubscription.subscribed(notifications.map(\.userID), on: db)
        var jobs: [JobQueue.NewJob] = []
        for (userID, notification) in notifications where subscribed.contains(userID) {
            let message = try await Self.message(for: notification, on: db)
            for subscription in try await PushSubscription.all(of: userID, on: db) {
                jobs.append(try .init(queue: queue, payload: Job(subscriptionID: subscription.id.wire, message: message),
                                      dedupeKey: "push:\(notification.id):\(subscription.id.wire)", maxAttempts: 8))
            }
        }
        guard !jobs.isEmpty else { return nil }
        return { [jobs] _, outbox in
            for job in jobs { try await JobQueue.enqueue(job, at: now, in: outbox) }
        }
    }

    static func message(for notification: NotificationDTO, on db: any Database) async throws -> Message {
        let summary = try await NotificationSummary.of(notification, on: db)
        return Message(title: summary.title, body: summary.excerpt ?? "", url: summary.path, notificationID: notification.id,
                       tag: "conversation:\(notification.conversationID)")
    }

    /// The job's handler: one push to one browser.
    func handle(_ job: JobQueue.ClaimedJob, on db: any Database) async throws {
        let input = try job.decode(Job.self)
        guard let id = UUID(wire: input.subscriptionID),
              let subscription = try await PushSubscription.find(id, on: db)
        else { return }  // unsubscribed since
        let payload = Array(try EventLog.encoder.encode(input.message))
        let result = try await sender.send(payload, to: subscription)
        defer { outcome.yield(result) }
        switch result {
        case .delivered:
            return
        case .gone:
            try await db.writeTransaction(writes) { tx in try await PushSubscription.delete(endpoint: subscription.endpoint, on: tx) }
        case .refused(let status):
            logger.warning("a push service refused a push", metadata: ["status": .stringConvertible(status), "subscription": .string(id.wire)])
        }
    }
}

struct PushDeliveryKey: StorageKey {
    typealias Value = PushDelivery
}

struct PushFollowerKey: StorageKey {
    typealias Value = LogFollower
}
