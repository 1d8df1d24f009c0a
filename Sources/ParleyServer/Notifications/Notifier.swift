import Fluent
import Foundation
import Vapor

/// Turns committed events into notifications: it follows the event log durably (a
/// `LogFollower` named `notifications`), so each message, approval request and read marker is
/// handled exactly once, on whichever node gets there first, in the transaction that moves its
/// cursor.
enum Notifier {
    static let types: Set<EventType> = [.messageCreated, .messageApproved, .runApprovalRequested, .readUpdated]
    static let excerptLength = 160

    /// The follower of the event log that keeps every inbox.
    static func follower(database: @escaping @Sendable () throws -> any Database, writes: WriteGate, domainEvents: DomainEvents,
                         clock: AppClock, logger: Logger) -> LogFollower {
        LogFollower(name: "notifications", types: types, database: database, writes: writes, domainEvents: domainEvents,
                    logger: logger) { events, db in
            try await plan(events, on: db, now: clock.now())
        }
    }

    /// What a batch of events calls for: the notifications to add and the read markers that
    /// read some, worked out with plain reads; nil when it calls for nothing (most messages).
    static func plan(_ events: [CommittedEvent], on db: any Database, now: Date) async throws -> LogFollower.Writes? {
        var notifications: [UserNotification] = []
        var reads: [(userID: UUID, conversationID: UUID, seq: Int)] = []
        // A conversation's members and settings, once read whole, serve the rest of the batch.
        var settings: [UUID: (kind: Conversation.Kind?, members: [Membership.NotificationSetting])] = [:]
        for event in events {
            switch event.type {
            case .messageCreated, .messageApproved:
                // A held message notifies nobody until a moderator approves it. Notifications are
                // kept once per person and message, so approving one that was never held (and
                // notified already) adds none.
                guard let message = try? EventLog.decoder.decode(MessageDTO.self, from: Data(event.payload.utf8)),
                      message.moderation?.state != .held,
                      let authorID = UUID(wire: message.authorID), let messageID = UUID(wire: message.id)
                else { continue }
                let mentions = MessageFormat.mentions(in: message.content ?? [])
                let rootID = message.replyTo.flatMap(UUID.init(wire:))
                var participants: Set<UUID> = []
                if let rootID { participants = try await Message.threadParticipants(root: rootID, on: db) }
                let members: (kind: Conversation.Kind?, members: [Membership.NotificationSetting])
                if let cached = settings[event.conversationID] {
                    members = cached
                } else {
                    // Only those named or in the thread can be notified in a channel, besides the
                    // members who want every message: the rest are not read.
                    let candidates = mentions.everyone ? nil : Set(mentions.userIDs).union(participants)
                    let read = try await Membership.notificationSettings(of: event.conversationID, narrowedTo: candidates, on: db)
                    members = (read.kind, read.members)
                    if read.complete { settings[event.conversationID] = members }
                }
                let recipients = members.kind.map { kind in
                    NotificationRules.recipients(authorID: authorID, kind: kind, mentions: mentions, isReply: rootID != nil,
                                                 threadParticipants: participants, members: members.members)
                } ?? []
                notifications += Self.notifications(about: message, id: messageID, author: authorID, in: event.conversationID,
                                                    recipients: recipients)
            case .runApprovalRequested:
                guard let run = try? EventLog.decoder.decode(RunDTO.self, from: Data(event.payload.utf8)) else { continue }
                notifications += approvalNotifications(run, in: event.conversationID)
            case .readUpdated:
                // Reading a conversation reads its notifications up to there.
                guard let userID = event.visibleTo,
                      let marker = try? EventLog.decoder.decode(ReadMarkerMoved.self, from: Data(event.payload.utf8)),
                      try await UserNotification.hasUnread(of: userID, in: event.conversationID, throughSeq: marker.lastReadSeq, on: db)
                else { continue }
                reads.append((userID, event.conversationID, marker.lastReadSeq))
            default:
                continue
            }
        }
        guard !notifications.isEmpty || !reads.isEmpty else { return nil }
        return { [notifications, reads] tx, outbox in
            try await record(notifications, tx: tx, outbox: outbox)
            for read in reads {
                try await markRead(.conversation(read.conversationID, throughSeq: read.seq), of: read.userID, at: now, tx: tx, outbox: outbox)
            }
        }
    }

    private static func notifications(about message: MessageDTO, id messageID: UUID, author authorID: UUID, in conversationID: UUID,
                                      recipients: [NotificationRules.Recipient]) -> [UserNotification] {
        guard !recipients.isEmpty else { return [] }
        let excerpt = message.content.map { MessageFormat.plainText($0) } ?? message.body
        return recipients.map { recipient in
            UserNotification(id: UUID.timeOrdered(), userID: recipient.userID, kind: recipient.kind, conversationID: conversationID,
                             messageID: messageID, messageSeq: message.seq, runID: nil, actorID: authorID,
                             source: "message:\(message.id)", excerpt: excerpt.map { String($0.prefix(excerptLength)) },
                             createdAt: message.createdAt, readAt: nil)
        }
    }

    private static func approvalNotifications(_ run: RunDTO, in conversationID: UUID) -> [UserNotification] {
        guard let request = run.approval, let runID = UUID(wire: run.id) else { return [] }
        let approvers = request.approvers.compactMap(UUID.init(wire:))
        return approvers.map { userID in
            UserNotification(id: UUID.timeOrdered(), userID: userID, kind: .approval, conversationID: conversationID, messageID: nil,
                             messageSeq: nil, runID: runID, actorID: UUID(wire: run.assistantID),
                             source: "approval:\(run.id):\(request.callID)",
                             excerpt: String("\(request.tool) \(request.arguments)".prefix(excerptLength)),
                             createdAt: run.startedAt ?? run.createdAt, readAt: nil)
        }
    }

    private static func record(_ notifications: [UserNotification], tx: any Database, outbox: Outbox) async throws {
        for created in try await UserNotification.insert(notifications, on: tx) {
            try await outbox.record(NotificationCreated(NotificationDTO(created)), in: created.conversationID, visibleTo: created.userID,
                                    at: created.createdAt)
        }
    }

    /// Marks notifications read and tells the person's devices, one event per conversation.
    static func markRead(_ selection: UserNotification.Selection, of userID: UUID, at now: Date, tx: any Database,
                         outbox: Outbox) async throws {
        let marked = try await UserNotification.markRead(selection, of: userID, at: now, on: tx)
        guard !marked.isEmpty else { return }
        let unread = try await UserNotification.unreadCount(of: userID, on: tx)
        for (conversationID, group) in Dictionary(grouping: marked, by: \.conversationID) {
            try await outbox.record(NotificationsRead(ids: group.map(\.id.wire), unreadCount: unread), in: conversationID,
                                    visibleTo: userID, at: now)
        }
    }
}

struct NotificationFollowerKey: StorageKey {
    typealias Value = LogFollower
}
