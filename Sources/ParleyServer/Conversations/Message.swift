import Crypto
import Fluent
import SQLKit
import Vapor

final class Message: Model, @unchecked Sendable {
    static let schema = "messages"

    // identity
    @ID(key: .id) var id: UUID?
    @Parent(key: "conversation_id") var conversation: Conversation
    /// Per conversation, from 1, without gaps; assigned in the inserting transaction.
    @Field(key: "seq") var seq: Int

    // data
    @Parent(key: "author_id") var author: User
    /// Empty once deleted: a deleted message keeps its seq (a tombstone) but not its text.
    @Field(key: "body") var body: String
    /// The thread root this message replies to (same conversation).
    @OptionalField(key: "reply_to_id") var replyToID: UUID?
    @OptionalField(key: "reply_to_seq") var replyToSeq: Int?
    /// Bumped by every edit and the deletion; the ETag is built from it.
    @Field(key: "version") var version: Int
    /// The author's Idempotency-Key (unique per author) and a digest of the request it came with.
    @OptionalField(key: "idempotency_key") var idempotencyKey: String?
    @OptionalField(key: "request_digest") var requestDigest: String?
    /// Messages this one cites (JSON `[{seq, message_id}]`), checked by whoever wrote them
    /// (an assistant's reply); nil for people's messages.
    @OptionalField(key: "citations") var citationsJSON: String?
    /// The body's structure (`[MessageFormat.Node]` as JSON), with mentions resolved.
    @OptionalField(key: "content") var contentJSON: String?
    /// The files it carries (`[MessageAttachment]` as JSON), linked in the send's transaction.
    @OptionalField(key: "attachments") var attachmentsJSON: String?
    /// Their names, for full-text search beside the body.
    @OptionalField(key: "attachment_names") var attachmentNames: String?

    /// What moderation decided (`MessageModeration.State`); nil for a message it let through
    /// (or never scored), with the score and the model version that gave it.
    @OptionalField(key: "moderation_state") var moderationState: String?
    @OptionalField(key: "moderation_score") var moderationScore: Double?
    @OptionalField(key: "moderation_model") var moderationModel: String?

    // timestamps
    @Field(key: "created_at") var createdAt: Date
    @OptionalField(key: "edited_at") var editedAt: Date?
    @OptionalField(key: "deleted_at") var deletedAt: Date?

    init() {}

    init(id: UUID = UUID.timeOrdered(), conversationID: UUID, seq: Int, authorID: UUID, body: String, replyToID: UUID?,
         replyToSeq: Int?, idempotencyKey: String?, requestDigest: String?, at now: Date) {
        self.id = id
        self.$conversation.id = conversationID
        self.seq = seq
        self.$author.id = authorID
        self.body = body
        self.replyToID = replyToID
        self.replyToSeq = replyToSeq
        self.version = 1
        self.idempotencyKey = idempotencyKey
        self.requestDigest = requestDigest
        self.createdAt = now
    }

    var isDeleted: Bool { deletedAt != nil }

    /// A strong validator of the message's editable state, for `If-Match`.
    var etag: String { "\"\(versionTag)\"" }

    private var versionTag: String { "\(id?.wire ?? "")-\(version)" }

    /// The validator of one representation (reactions and reply count included), for
    /// `If-None-Match`: the version tag plus a digest of the body sent.
    func etag(representation: Data) -> String {
        "\"\(versionTag).\(SHA256.hash(data: representation).hexString.prefix(16))\""
    }

    /// Whether `tag` (from `If-Match`) names this version: the version tag, or any
    /// representation tag of it (a reaction since does not make an edit stale).
    func isVersion(_ tag: String) -> Bool {
        tag == etag || tag.hasPrefix("\"\(versionTag).")
    }
}

extension Message {
    static func find(conversationID: UUID, seq: Int, on db: any Database) async throws -> Message? {
        try await Message.query(on: db)
            .filter(\.$conversation.$id == conversationID)
            .filter(\.$seq == seq)
            .first()
    }

    /// Who took part in a thread: its root's author and everyone who replied in it.
    static func threadParticipants(root rootID: UUID, on db: any Database) async throws -> Set<UUID> {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let author_id: UUID }
        return Set(try await sql.raw("""
            SELECT DISTINCT author_id FROM messages WHERE id = \(bind: rootID) OR reply_to_id = \(bind: rootID)
            """).all(decoding: Row.self).map(\.author_id))
    }

    /// A message as a reader of the conversation's text sees it: who wrote it (with their
    /// handle), when, and the thread it is in. No reactions or reply counts.
    struct Line: Decodable, Sendable {
        let seq: Int
        let authorID: UUID
        let authorHandle: String
        let body: String
        let replyToID: UUID?
        let createdAt: Date

        enum CodingKeys: String, CodingKey {
            case seq, body
            case authorID = "author_id"
            case authorHandle = "author_handle"
            case replyToID = "reply_to_id"
            case createdAt = "created_at"
        }
    }

    /// The latest `limit` messages with seq up to `seq`, oldest first, tombstones and held
    /// messages left out, as
    /// plain lines with their authors' handles (one query): for readers that need no
    /// reactions or reply counts (an assistant's prompt and tools).
    static func window(in conversationID: UUID, through seq: Int? = nil, limit: Int, on db: any Database) async throws -> [Line] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        let upTo: SQLQueryString = seq.map { "AND m.seq <= \(bind: $0)" } ?? ""
        let head: SQLQueryString = """
            SELECT m.seq AS seq, m.author_id AS author_id, u.handle AS author_handle, m.body AS body,
                   m.reply_to_id AS reply_to_id, m.created_at AS created_at
            FROM messages m JOIN users u ON u.id = m.author_id
            WHERE m.conversation_id = \(bind: conversationID) AND m.deleted_at IS NULL
              AND (m.moderation_state IS NULL OR m.moderation_state <> 'held')
            """
        let tail: SQLQueryString = " ORDER BY m.seq DESC LIMIT \(unsafeRaw: String(max(0, limit)))"
        return try await sql.raw(head + " " + upTo + tail).all(decoding: Line.self).reversed()
    }
}

extension Message {
    /// Messages waiting for a moderator, oldest first: held and flagged ones, and any of
    /// `reported` (ids) not deleted and not yet decided.
    static func awaitingModeration(reported: [UUID], limit: Int, on db: any Database) async throws -> [Message] {
        var query = Message.query(on: db).filter(\.$deletedAt == nil)
        query = query.group(.or) { group in
            group.filter(\.$moderationState ~~ [MessageModeration.State.held.rawValue, MessageModeration.State.flagged.rawValue])
            if !reported.isEmpty { group.filter(\.$id ~~ reported) }
        }
        return try await query.sort(\.$createdAt).limit(limit).all()
    }
}
