import Fluent
import Foundation
import Learning
import Vapor

/// Reports, the moderators' queue, their decisions and the policies, independent of HTTP.
struct ModerationService: Sendable {
    let db: any Database
    let writes: WriteGate
    let clock: AppClock
    let serving: ModelServing

    struct Caller: Sendable {
        let userID: UUID
        let role: User.Role
    }

    static let queueLimit = 200
    static let reasonLength = 1...500

    private static func requireModerator(_ caller: Caller) throws {
        guard caller.role.moderates else { throw ModerationError.notAModerator }
    }

    // MARK: Reports

    /// A member reports a message of their conversation; false when they had reported it already.
    func report(_ access: ConversationService.Access, seq: Int, reason raw: String?, by reporterID: UUID) async throws -> Bool {
        _ = try access.requireMember()
        var validator = Validator()
        let reason = validator.text(raw, "reason", length: Self.reasonLength)
        try validator.check()
        guard let reason, seq >= 1, let message = try await Message.find(conversationID: access.conversationID, seq: seq, on: db),
              !message.isDeleted
        else { throw ConversationError.messageNotFound }
        guard message.$author.id != reporterID else {
            throw ValidationError(field: "seq", code: "own_message", message: "you cannot report your own message; delete it instead")
        }
        let report = MessageReport(messageID: message.id!, conversationID: access.conversationID, reporterID: reporterID,
                                   reason: reason, at: clock.now())
        return try await db.writeTransaction(writes) { tx, _ in try await MessageReport.add(report, on: tx) }
    }

    // MARK: The queue

    /// Held, flagged and reported messages, grouped by similarity (k-means over the features
    /// the moderation model sees, or hashed n-grams when none is deployed) so a moderator can
    /// decide about a wave of alike messages together. Largest groups first.
    func queue(caller: Caller) async throws -> ModerationQueueDTO {
        try Self.requireModerator(caller)
        let reported = try await MessageReport.openMessageIDs(limit: Self.queueLimit, on: db)
        let messages = try await Message.awaitingModeration(reported: reported, limit: Self.queueLimit, on: db)
        let reports = Dictionary(grouping: try await MessageReport.open(for: messages.compactMap(\.id), on: db), by: \.messageID)
        let items = try messages.map { message in
            ModerationItemDTO(message: try MessageDTO(message),
                              reports: (reports[message.id!] ?? []).map { ReportDTO(reporterID: $0.reporterID.wire, reason: $0.reason, createdAt: $0.createdAt) })
        }
        let groups = try Self.group(items, messages.map(\.body), serving: serving)
        return ModerationQueueDTO(groups: groups, total: items.count)
    }

    static func group(_ items: [ModerationItemDTO], _ texts: [String], serving: ModelServing) throws -> [ModerationGroupDTO] {
        guard items.count > 2 else { return items.isEmpty ? [] : [ModerationGroupDTO(items: items)] }
        let model = serving.production(for: ModerationScreening.model)?.classifier
        let vectorizer = try HashingVectorizer(wordNGrams: 1...2, characterNGrams: 3...4, bucketBits: 16)
        let points = texts.map { text in model?.features(text) ?? vectorizer.transform(text).l2Normalized() }
        // About one group per three messages, at most eight.
        let k = min(8, max(1, items.count / 3))
        let clusters = try KMeans.fit(points, k: k, seed: 7)
        var grouped: [Int: [ModerationItemDTO]] = [:]
        for (index, cluster) in clusters.assignments.enumerated() { grouped[cluster, default: []].append(items[index]) }
        return grouped.values.map { ModerationGroupDTO(items: $0) }
            .sorted { $0.items.count != $1.items.count ? $0.items.count > $1.items.count : $0.items[0].message.id < $1.items[0].message.id }
    }

    // MARK: Decisions

    enum Action: String, Codable, Sendable { case approve, remove }

    /// Approves or removes a message. In one transaction: the message changes (and its event),
    /// its reports close, the decision is audited, and the message becomes a labelled example
    /// for the next training of the moderation model (removed: positive; approved: negative).
    func decide(_ messageID: UUID, _ action: Action, reason raw: String?, caller: Caller) async throws -> MessageDTO {
        try Self.requireModerator(caller)
        var validator = Validator()
        let reason = raw == nil && action == .approve ? nil : validator.text(raw, "reason", length: Self.reasonLength)
        try validator.check()
        guard let message = try await Message.find(messageID, on: db) else { throw ModerationError.messageNotFound }
        guard !message.isDeleted else { throw ModerationError.alreadyDecided }
        let text = message.body
        let scoredBy = message.moderationModel, score = message.moderationScore
        let now = clock.now()
        return try await db.writeTransaction(writes) { tx, outbox in
            let decided = try await MessageService.moderate(messageID, action == .approve ? .approve : .remove, at: now, tx: tx, outbox: outbox)
            try await MessageReport.resolve(messageID: messageID, at: now, on: tx)
            try await AuditLog.record(actor: caller.userID, action: "moderation.\(action.rawValue)", subject: "message:\(messageID.wire)",
                                      reason: reason, at: now, on: tx)
            if !text.isEmpty {
                try await TrainingExample.upsert([.init(text: text, label: action == .remove, source: .decision, key: "message:\(messageID.wire)",
                                                        scoredBy: scoredBy, score: score)],
                                                 model: ModerationScreening.model, at: now, on: tx)
            }
            return decided
        }
    }

    // MARK: Policies

    func sitePolicy(caller: Caller) async throws -> ModerationPolicy.Thresholds {
        try Self.requireModerator(caller)
        return try await ModerationPolicy.site(on: db)
    }

    func setSitePolicy(_ thresholds: ModerationPolicy.Thresholds, caller: Caller) async throws -> ModerationPolicy.Thresholds {
        guard caller.role == .admin else { throw ModerationError.notAModerator }
        try thresholds.validate()
        let now = clock.now()
        try await db.writeTransaction(writes) { tx, _ in
            try await ModerationPolicy.write(thresholds, scope: ModerationPolicy.siteScope, by: caller.userID, at: now, on: tx)
            try await AuditLog.record(actor: caller.userID, action: "moderation.policy", subject: "site", reason: nil, at: now, on: tx)
        }
        return thresholds
    }

    /// A conversation's policy: its override, and the site's it falls back on. Its managers
    /// and moderators may read and change it.
    func conversationPolicy(_ access: ConversationService.Access, caller: Caller) async throws -> ConversationPolicyDTO {
        try Self.requireManagerOrModerator(access, caller)
        return ConversationPolicyDTO(override: try await ModerationPolicy.override(of: access.conversationID, on: db),
                                     site: try await ModerationPolicy.site(on: db))
    }

    func setConversationPolicy(_ access: ConversationService.Access, _ thresholds: ModerationPolicy.Thresholds?, caller: Caller) async throws
        -> ConversationPolicyDTO {
        try Self.requireManagerOrModerator(access, caller)
        try thresholds?.validate()
        let now = clock.now()
        try await db.writeTransaction(writes) { tx, _ in
            try await ModerationPolicy.write(thresholds, scope: access.conversationID.wire, by: caller.userID, at: now, on: tx)
            try await AuditLog.record(actor: caller.userID, action: "moderation.policy", subject: "conversation:\(access.conversationID.wire)",
                                      reason: nil, at: now, on: tx)
        }
        return ConversationPolicyDTO(override: thresholds, site: try await ModerationPolicy.site(on: db))
    }

    private static func requireManagerOrModerator(_ access: ConversationService.Access, _ caller: Caller) throws {
        guard caller.role.moderates || access.membership?.canManage == true else {
            if access.membership == nil { throw ConversationError.conversationNotFound }
            throw ConversationError.notAManager("Only the conversation's owner and admins, or moderators, may set its moderation policy.")
        }
    }
}

struct ReportDTO: Content {
    var reporterID: String
    var reason: String
    var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case reason
        case reporterID = "reporter_id"
        case createdAt = "created_at"
    }
}

struct ModerationItemDTO: Content {
    /// The whole message, as its author sees it (moderation state and score included).
    var message: MessageDTO
    var reports: [ReportDTO]
}

struct ModerationGroupDTO: Content {
    var items: [ModerationItemDTO]
}

struct ModerationQueueDTO: Content {
    var groups: [ModerationGroupDTO]
    var total: Int
}

struct ConversationPolicyDTO: Content {
    /// This conversation's thresholds, or null when it follows the site's.
    var override: ModerationPolicy.Thresholds?
    var site: ModerationPolicy.Thresholds
}

struct ReportRequest: Content {
    var reason: String?
}

struct DecisionRequest: Content {
    var action: String
    var reason: String?
}

struct PolicyRequest: Content {
    var flagAt: Double?
    var holdAt: Double?
    var blockAt: Double?

    enum CodingKeys: String, CodingKey {
        case flagAt = "flag_at"
        case holdAt = "hold_at"
        case blockAt = "block_at"
    }
}
