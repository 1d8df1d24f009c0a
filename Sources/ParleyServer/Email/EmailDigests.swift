import Fluent
import Foundation
import Vapor

/// E-mail digests for people who are away: a durable follower of the event log (named
/// `email`) schedules, for each new notification, one `email.digest` job per person and
/// period (a dedupe key), due when the period ends; the job mails what is still unread then
/// and has not been in a digest, and records how far it reported. A person who read
/// everything in the meantime gets nothing.
struct EmailDigests: Sendable {
    static let queue = "email.digest"
    /// The most notifications one digest lists (the newest).
    static let maxItems = 20

    struct Job: Codable, Sendable {
        var userID: String
        enum CodingKeys: String, CodingKey { case userID = "user_id" }
    }

    let transport: any MailTransport
    let from: String
    let baseURL: String
    let writes: WriteGate
    let clock: AppClock

    static func follower(delay: Duration, database: @escaping @Sendable () throws -> any Database, writes: WriteGate,
                         domainEvents: DomainEvents, logger: Logger) -> LogFollower {
        LogFollower(name: "email", types: [.notificationCreated], database: database, writes: writes, domainEvents: domainEvents,
                    logger: logger) { events, db in
            try await plan(events, delay: delay, on: db)
        }
    }

    /// One job per person and period of `delay`, due at the period's end; nil when no one in
    /// the batch wants one.
    static func plan(_ events: [CommittedEvent], delay: Duration, on db: any Database) async throws -> LogFollower.Writes? {
        let seconds = max(1, JobQueue.seconds(delay))
        var due: [UUID: Date] = [:]
        for event in events {
            guard let userID = event.visibleTo,
                  let notification = try? EventLog.decoder.decode(NotificationDTO.self, from: Data(event.payload.utf8))
            else { continue }
            let end = (floor(notification.createdAt.timeIntervalSince1970 / seconds) + 1) * seconds
            due[userID] = Date(timeIntervalSince1970: end)
        }
        let optedOut = try await EmailDigestSettings.optedOut(Array(due.keys), on: db)
        var jobs: [(JobQueue.NewJob, Date)] = []
        for (userID, end) in due where !optedOut.contains(userID) {
            guard let user = try await User.find(userID, on: db), user.email?.isEmpty == false else { continue }
            jobs.append((try .init(queue: queue, payload: Job(userID: userID.wire), dedupeKey: "digest:\(userID.wire):\(Int(end.timeIntervalSince1970))",
                                   runAt: end, maxAttempts: 6), end))
        }
        guard !jobs.isEmpty else { return nil }
        return { [jobs] _, outbox in
            for (job, end) in jobs { try await JobQueue.enqueue(job, at: end, in: outbox) }
        }
    }

    /// The job's handler: the digest, if anything is still unread and unreported.
    func handle(_ job: JobQueue.ClaimedJob, on db: any Database) async throws {
        let input = try job.decode(Job.self)
        guard let userID = UUID(wire: input.userID) else { throw PermanentJobFailure(reason: "bad user id") }
        guard let mail = try await digest(for: userID, on: db) else { return }
        do {
            try await transport.send(mail.rendered, from: from, to: [mail.to])
        } catch let failure as SMTPClient.Failure where failure.permanent {
            throw PermanentJobFailure(reason: failure.description)
        }
        let newest = mail.items.map(\.at).max() ?? clock.now()
        try await db.writeTransaction(writes) { tx in try await EmailDigestSettings.markSent(through: newest, for: userID, on: tx) }
    }

    /// What the digest for `userID` says now; nil when there is nothing to send.
    func digest(for userID: UUID, on db: any Database) async throws -> DigestMail? {
        let settings = try await EmailDigestSettings.find(userID, on: db)
        guard settings.enabled, let user = try await User.find(userID, on: db), let address = user.email, !address.isEmpty else { return nil }
        let now = clock.now()
        let unread = try await UserNotification.page(of: userID, unreadOnly: true, before: nil, limit: Self.maxItems, on: db)
            .filter { notification in
                notification.createdAt <= now && (settings.sentThrough.map { notification.createdAt > $0 } ?? true)
            }
        guard !unread.isEmpty else { return nil }
        var items: [DigestMail.Item] = []
        for notification in unread.reversed() {
            let summary = try await NotificationSummary.of(NotificationDTO(notification), on: db)
            var title = summary.title
            if let conversation = try await Conversation.find(notification.conversationID, on: db), let name = conversation.title,
               conversation.kind != Conversation.Kind.direct {
                title += " in \(name)"
            }
            items.append(.init(title: title, excerpt: notification.excerpt, link: baseURL + summary.path, at: notification.createdAt))
        }
        return DigestMail(from: from, to: address, recipientName: user.displayName.isEmpty ? user.handle : user.displayName,
                          items: items, baseURL: baseURL, date: now, messageID: "\(UUID().wire)@parley")
    }
}

struct EmailFollowerKey: StorageKey {
    typealias Value = LogFollower
}

struct EmailDigestsKey: StorageKey {
    typealias Value = EmailDigests
}
