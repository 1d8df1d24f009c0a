import Vapor

struct ReactionSummaryDTO: Content, Equatable {
    var emoji: String
    var count: Int
    /// Whether the caller is among those who reacted.
    var me: Bool
}

struct MessageDTO: Content {
    var id: String
    var conversationID: String
    var seq: Int
    var authorID: String
    /// Null once the message is deleted (the seq stays, as a tombstone).
    var body: String?
    var replyTo: String?
    var replyToSeq: Int?
    var createdAt: Date
    var editedAt: Date?
    var deletedAt: Date?
    var reactions: [ReactionSummaryDTO]
    var replyCount: Int
    /// Earlier messages this one cites (an assistant's reply), each checked to exist and be
    /// readable by the member who asked; absent on people's messages.
    var citations: [MessageCitation]?
    /// The body's structure: what clients render (never the body parsed again).
    var content: [MessageFormat.Node]?
    /// The files it carries, in the order they were attached (empty once deleted). Optional
    /// only so that events logged before files existed still decode.
    var attachments: [MessageAttachment]?
    /// What moderation decided, shown to the author (moderators see it in their queue); absent for a message it
    /// let through. Other members see a held message's place (`state: held`) but not its text.
    var moderation: MessageModeration?

    enum CodingKeys: String, CodingKey {
        case id, seq, body, reactions
        case conversationID = "conversation_id"
        case authorID = "author_id"
        case replyTo = "reply_to"
        case replyToSeq = "reply_to_seq"
        case createdAt = "created_at"
        case editedAt = "edited_at"
        case deletedAt = "deleted_at"
        case replyCount = "reply_count"
        case citations, content, attachments, moderation
    }

    /// - Parameter content: the message's structure when the caller has it parsed already
    ///   (otherwise it is read from the stored JSON).
    init(_ message: Message, reactions: [ReactionSummaryDTO] = [], replyCount: Int = 0, content: [MessageFormat.Node]? = nil) throws {
        id = try message.requireID().wire
        conversationID = message.$conversation.id.wire
        seq = message.seq
        authorID = message.$author.id.wire
        body = message.isDeleted ? nil : message.body
        replyTo = message.replyToID?.wire
        replyToSeq = message.replyToSeq
        createdAt = message.createdAt
        editedAt = message.editedAt
        deletedAt = message.deletedAt
        self.reactions = message.isDeleted ? [] : reactions
        self.replyCount = replyCount
        self.citations = message.isDeleted ? nil
            : message.citationsJSON.flatMap { try? EventLog.decoder.decode([MessageCitation].self, from: Data($0.utf8)) }
        // Messages from before structures were stored are parsed now (their mentions stay text).
        self.content = message.isDeleted ? nil
            : content ?? message.contentJSON.flatMap { try? EventLog.decoder.decode([MessageFormat.Node].self, from: Data($0.utf8)) }
                ?? MessageFormat.parse(message.body)
        self.attachments = message.isDeleted ? []
            : message.attachmentsJSON.flatMap { try? EventLog.decoder.decode([MessageAttachment].self, from: Data($0.utf8)) } ?? []
        self.moderation = message.moderationState.flatMap(MessageModeration.State.init(rawValue:)).map {
            MessageModeration(state: $0, score: message.moderationScore, model: message.moderationModel)
        }
    }

    /// The message as `viewer` sees it (nil: any member, as in events). Its author sees it
    /// whole. Anyone else sees a held message's place (seq, author, time) with no text, files
    /// or score, so seqs stay gap-free for every client, and no mark on the others.
    func seen(by viewer: UUID?) -> MessageDTO {
        guard let moderation, viewer?.wire != authorID else { return self }
        var seen = self
        switch moderation.state {
        case .held:
            seen.body = nil
            seen.content = nil
            seen.attachments = []
            seen.citations = nil
            seen.moderation = MessageModeration(state: .held, score: nil, model: nil)
        case .removed:
            seen.moderation = MessageModeration(state: .removed, score: nil, model: nil)
        case .flagged, .approved:
            seen.moderation = nil
        }
        return seen
    }
}

/// Moderation's mark on a message.
struct MessageModeration: Codable, Sendable, Equatable {
    enum State: String, Codable, Sendable {
        /// Visible to everyone, waiting for a moderator's look.
        case flagged
        /// Its text is visible only to its author (and to moderators, in their queue) until a moderator decides.
        case held
        /// A moderator let it stand.
        case approved
        /// A moderator removed it (a tombstone, as a deletion).
        case removed
    }

    var state: State
    /// The model's probability that the message breaks the rules, when a model scored it.
    var score: Double?
    /// The model version that scored it (`moderation@3`).
    var model: String?
}

/// A message a reply cites.
struct MessageCitation: Codable, Sendable, Equatable {
    var seq: Int
    var messageID: String

    enum CodingKeys: String, CodingKey {
        case seq
        case messageID = "message_id"
    }
}

struct MessagePage: Content {
    var items: [MessageDTO]
    /// More messages exist beyond this page in the direction of paging.
    var hasMore: Bool

    enum CodingKeys: String, CodingKey {
        case items
        case hasMore = "has_more"
    }
}

struct SendMessageRequest: Decodable {
    var body: String??
    var replyTo: String??
    /// Ids of the sender's uploads (`POST /v1/uploads`) the message carries.
    var attachments: [String]??

    enum CodingKeys: String, CodingKey, CaseIterable {
        case body, attachments
        case replyTo = "reply_to"
    }

    /// A message other features send (an assistant's reply).
    init(body: String, replyTo: String? = nil) {
        self.body = .some(body)
        self.replyTo = replyTo.map { .some($0) }
    }

    init(from decoder: any Decoder) throws {
        // A field this endpoint does not know is refused: dropping it would let a client
        // believe it sent something (a file, a format) that was never kept.
        try decoder.refuseUnknownKeys(allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        body = try container.decodePresence(String.self, forKey: .body)
        replyTo = try container.decodePresence(String.self, forKey: .replyTo)
        attachments = try container.decodePresence([String].self, forKey: .attachments)
    }
}

/// PUT and merge-PATCH bodies of a message: which keys are present matters.
typealias EditMessageRequest = SendMessageRequest
