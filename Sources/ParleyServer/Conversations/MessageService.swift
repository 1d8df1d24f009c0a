import Crypto
import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// Messages, edits, deletions, reactions and threads, independent of HTTP.
struct MessageService: Sendable {
    let db: any Database
    let clock: AppClock
    let maxBodyLength: Int
    let hooks: Hooks
    let writes: WriteGate?
    /// Where a message's files are kept (the Files feature), or `NoAttachments`.
    var attachments: any MessageAttachments = NoAttachments()
    /// Moderation's look at each message before it is stored, or `NoScreening`.
    var screening: any MessageScreening = NoScreening()

    /// Points where tests inject failures to prove atomicity; no-ops in production.
    final class Hooks: Sendable {
        private let afterSeqAssignedBox = NIOLockedValueBox<(@Sendable (Int) throws -> Void)?>(nil)

        init() {}

        /// Runs inside the sending transaction, right after the seq is taken.
        var afterSeqAssigned: (@Sendable (Int) throws -> Void)? {
            get { afterSeqAssignedBox.withLockedValue { $0 } }
            set { afterSeqAssignedBox.withLockedValue { $0 = newValue } }
        }
    }

    static let pageLimit = 1...100
    static let defaultPageSize = 50

    // MARK: Reading

    enum Direction: Sendable { case latest, before(Int), after(Int) }

    func page(_ access: ConversationService.Access, direction: Direction, limit: Int, viewer: UUID) async throws -> MessagePage {
        var query = Message.query(on: db).filter(\.$conversation.$id == access.conversationID)
        let ascending: Bool
        switch direction {
        case .latest:
            ascending = false
        case .before(let seq):
            query = query.filter(\.$seq < seq)
            ascending = false
        case .after(let seq):
            query = query.filter(\.$seq > seq)
            ascending = true
        }
        let rows = try await query.sort(\.$seq, ascending ? .ascending : .descending).limit(limit + 1).all()
        var page = Array(rows.prefix(limit))
        if !ascending { page.reverse() }
        return MessagePage(items: try await Self.dtos(for: page, viewer: viewer, on: db), hasMore: rows.count > limit)
    }

    func message(_ access: ConversationService.Access, seq: Int, viewer: UUID) async throws -> (Message, MessageDTO) {
        let message = try await find(access, seq: seq)
        guard let dto = try await Self.dtos(for: [message], viewer: viewer, on: db).first else { throw Self.notFound }
        return (message, dto)
    }

    /// The replies of a thread root, oldest first.
    func replies(_ access: ConversationService.Access, seq: Int, after: Int?, limit: Int, viewer: UUID) async throws -> MessagePage {
        let root = try await find(access, seq: seq)
        var query = Message.query(on: db)
            .filter(\.$conversation.$id == access.conversationID)
            .filter(\.$replyToSeq == root.seq)
        if let after { query = query.filter(\.$seq > after) }
        let rows = try await query.sort(\.$seq).limit(limit + 1).all()
        let page = Array(rows.prefix(limit))
        return MessagePage(items: try await Self.dtos(for: page, viewer: viewer, on: db), hasMore: rows.count > limit)
    }

    static let notFound = ConversationError.messageNotFound

    private func find(_ access: ConversationService.Access, seq: Int) async throws -> Message {
        guard seq >= 1, let message = try await Message.find(conversationID: access.conversationID, seq: seq, on: db)
        else { throw Self.notFound }
        return message
    }

    /// DTOs with reaction summaries and reply counts, in two statements for any number of messages.
    static func dtos(for messages: [Message], viewer: UUID, on db: any Database, withReplyCounts: Bool = true) async throws -> [MessageDTO] {
        guard !messages.isEmpty, let sql = db as? any SQLDatabase else { return [] }
        let ids = messages.compactMap(\.id)
        struct ReactionRow: Decodable { let message_id: UUID; let emoji: String; let n: Int; let mine: Int }
        let reactionRows = try await sql.raw("""
            SELECT message_id, emoji, COUNT(*) AS n, MAX(CASE WHEN user_id = \(bind: viewer) THEN 1 ELSE 0 END) AS mine
            FROM reactions WHERE message_id IN (\(binds: ids)) GROUP BY message_id, emoji
            """).all(decoding: ReactionRow.self)
        var reactions: [UUID: [ReactionSummaryDTO]] = [:]
        for row in reactionRows {
            reactions[row.message_id, default: []].append(ReactionSummaryDTO(emoji: row.emoji, count: row.n, me: row.mine == 1))
        }
        // Reply counts, for any number of conversations in one statement (search results
        // span several), through the (conversation_id, reply_to_seq) index.
        struct ThreadKey: Hashable { let conversation: UUID; let seq: Int }
        var replyCounts: [ThreadKey: Int] = [:]
        if withReplyCounts {
            struct ReplyRow: Decodable { let conversation_id: UUID; let reply_to_seq: Int; let n: Int }
            let threads = Dictionary(grouping: messages, by: { $0.$conversation.id }).map { conversationID, messages in
                "(conversation_id = \(bind: conversationID) AND reply_to_seq IN (\(binds: messages.map(\.seq))))" as SQLQueryString
            }
            let head: SQLQueryString = "SELECT conversation_id, reply_to_seq, COUNT(*) AS n FROM messages WHERE deleted_at IS NULL AND ("
            let rows = try await sql.raw(head + threads.joined(separator: " OR ") + ") GROUP BY conversation_id, reply_to_seq")
                .all(decoding: ReplyRow.self)
            for row in rows { replyCounts[ThreadKey(conversation: row.conversation_id, seq: row.reply_to_seq)] = row.n }
        }
        return try messages.map { message in
            let summary = (reactions[message.id!] ?? []).sorted { $0.count != $1.count ? $0.count > $1.count : $0.emoji < $1.emoji }
            return try MessageDTO(message, reactions: summary,
                                  replyCount: replyCounts[ThreadKey(conversation: message.$conversation.id, seq: message.seq)] ?? 0)
                .seen(by: viewer)
        }
    }

    // MARK: Sending

    struct Sent: Sendable {
        var message: MessageDTO
        /// True when an earlier request with the same Idempotency-Key is being answered again.
        var replayed: Bool
    }

    /// The caller's own writes to commit with a message, in its transaction, after the message
    /// and its event (`seq`: the message's). If they throw, the message is not sent either.
    typealias AlongsideWrite = @Sendable (_ tx: any Database, _ outbox: Outbox, _ seq: Int) async throws -> Void

    /// `alongside` runs in the message's transaction; not for a replayed send (an earlier
    /// request with the key committed, with its own writes).
    func send(_ access: ConversationService.Access, _ input: SendMessageRequest, authorID: UUID, idempotencyKey: String?,
              citations: [MessageCitation] = [], alongside: AlongsideWrite? = nil) async throws -> Sent {
        _ = try access.requireMember()
        var validator = Validator()
        let fileIDs = Self.attachmentIDs(input.attachments ?? nil, into: &validator)
        // A message that carries files may have no text.
        let rawBody = input.body ?? nil
        let bodyOptional = !fileIDs.isEmpty && (rawBody ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        let body = bodyOptional ? "" : validator.text(rawBody, "body", length: 1...maxBodyLength)
        if let key = idempotencyKey, !Self.validIdempotencyKey(key) {
            validator.add("Idempotency-Key", "invalid", "must be 1-255 printable ASCII characters")
        }
        let replyTarget = try await resolveReply(input.replyTo ?? nil, in: access, into: &validator)
        try validator.check()
        guard let body else { throw Self.notFound }

        let content = try await structure(of: body, in: access)
        let verdict = try await screen(body, in: access.conversationID, by: authorID)
        // A key used before is found by the unique (author, key) index when the insert fails,
        // not by a read before every send: a replay rolls back (its seq with it) and answers as
        // the first send was answered.
        let digest = Self.digest(conversationID: access.conversationID, body: body, replyTo: replyTarget?.id, attachments: fileIDs)
        let attachments = self.attachments

        let conversationID = access.conversationID
        let now = clock.now()
        let hooks = self.hooks
        do {
            let sent: MessageDTO = try await db.writeTransaction(writes) { tx, outbox in
                guard let sql = tx as? any SQLDatabase else { throw StorageError.notSQL }
                let message = Message(conversationID: conversationID, seq: 0, authorID: authorID, body: body,
                                      replyToID: replyTarget?.id, replyToSeq: replyTarget?.seq,
                                      idempotencyKey: idempotencyKey, requestDigest: idempotencyKey == nil ? nil : digest, at: now)
                if !citations.isEmpty { message.citationsJSON = String(decoding: try EventLog.encoder.encode(citations), as: UTF8.self) }
                message.contentJSON = content.json
                Self.mark(message, with: verdict)
                if !fileIDs.isEmpty {
                    let files = try await attachments.attach(fileIDs, to: message.id!, in: conversationID, by: authorID, tx: tx)
                    message.attachmentsJSON = String(decoding: try EventLog.encoder.encode(files), as: UTF8.self)
                    message.attachmentNames = Self.searchableNames(files.map(\.name))
                }
                message.seq = try await Self.insert(message, on: sql)
                try hooks.afterSeqAssigned?(message.seq)
                // Built once, from the structure as parsed, for the event and the answer.
                let whole = try MessageDTO(message, content: content.nodes)
                try await Self.record(message, as: MessageSent.self, in: outbox, at: now, whole: whole)
                try await alongside?(tx, outbox, message.seq)
                return whole
            }
            return Sent(message: sent, replayed: false)
        } catch where (error as? any DatabaseError)?.isConstraintFailure == true && idempotencyKey != nil {
            // The key was used before (or by a concurrent request that won): answer as it was answered.
            if let earlier = try await replay(key: idempotencyKey!, authorID: authorID, digest: digest, viewer: authorID) {
                return earlier
            }
            throw error
        } catch let error as ValidationError where idempotencyKey != nil && !fileIDs.isEmpty {
            // A retry finds its files already on the message its key sent (they are linked
            // before the insert that would find the key): answer as that send was answered.
            if let earlier = try await replay(key: idempotencyKey!, authorID: authorID, digest: digest, viewer: authorID) {
                return earlier
            }
            throw error
        }
    }

    /// Inserts a message, taking the conversation's next seq, and returns the seq. The
    /// database moves the author's read marker to it (a trigger on both).
    ///
    /// On SQLite, one statement: the seq comes from the conversation row in the insert, and a
    /// trigger moves the conversation's last seq and activity time (one writer at a time, so
    /// no two inserts see the same last seq). On PostgreSQL the seq is taken first by updating
    /// the conversation row, whose lock orders concurrent senders until commit. Either way seqs
    /// stay gap-free, and a failure later in the transaction rolls the seq back with the rest.
    /// Plain SQL rather than `message.create(on:)`: Fluent's model reflection costs more than
    /// the insert on this path (seen in perf; see docs/benchmarks.md).
    static func insert(_ message: Message, on sql: any SQLDatabase) async throws -> Int {
        struct Row: Decodable { let seq: Int }
        let conversationID = message.$conversation.id, now = message.createdAt
        let columns: SQLQueryString = """
            INSERT INTO messages (id, conversation_id, seq, author_id, body, reply_to_id, reply_to_seq, version,
                                  idempotency_key, request_digest, citations, content, attachments, attachment_names,
                                  moderation_state, moderation_score, moderation_model, created_at)
            """
        func values(seq: SQLQueryString) -> SQLQueryString {
            """
            \(bind: message.id), \(bind: conversationID), \(seq), \(bind: message.$author.id), \(bind: message.body),
            \(bind: message.replyToID), \(bind: message.replyToSeq), \(bind: message.version),
            \(bind: message.idempotencyKey), \(bind: message.requestDigest), \(bind: message.citationsJSON),
            \(bind: message.contentJSON), \(bind: message.attachmentsJSON), \(bind: message.attachmentNames),
            \(bind: message.moderationState), \(bind: message.moderationScore), \(bind: message.moderationModel), \(bind: now)
            """
        }
        if sql.dialect.name == "sqlite" {
            guard let row = try await sql.raw(columns + " SELECT " + values(seq: "c.last_seq + 1")
                + " FROM conversations c WHERE c.id = \(bind: conversationID) RETURNING seq").first(decoding: Row.self)
            else { throw ConversationService.notFound }
            return row.seq
        }
        struct Taken: Decodable { let last_seq: Int }
        guard let seq = try await sql.raw("""
            UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = \(bind: now)
            WHERE id = \(bind: conversationID) RETURNING last_seq
            """).first(decoding: Taken.self)?.last_seq
        else { throw ConversationService.notFound }
        try await sql.raw(columns + " VALUES (" + values(seq: "\(bind: seq)") + ")").run()
        return seq
    }

    private func replay(key: String, authorID: UUID, digest: String, viewer: UUID) async throws -> Sent? {
        guard let earlier = try await Message.query(on: db)
            .filter(\.$author.$id == authorID)
            .filter(\.$idempotencyKey == key)
            .first()
        else { return nil }
        guard earlier.requestDigest == digest else {
            throw ConversationError.idempotencyKeyReused
        }
        guard let dto = try await Self.dtos(for: [earlier], viewer: viewer, on: db).first else { return nil }
        return Sent(message: dto, replayed: true)
    }

    static func validIdempotencyKey(_ key: String) -> Bool {
        (1...255).contains(key.utf8.count) && key.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    static func digest(conversationID: UUID, body: String, replyTo: UUID?, attachments: [UUID] = []) -> String {
        var parts = [conversationID.wire, replyTo?.wire ?? "-", body]
        // Only messages with files add a part, so earlier keys' digests stay what they were.
        if !attachments.isEmpty { parts.append(attachments.map(\.wire).joined(separator: ",")) }
        return SHA256.hash(data: Data(parts.joined(separator: "\u{1F}").utf8)).hexString
    }

    /// Files' names as search indexes them: each name, then its words (PostgreSQL's parser
    /// keeps `q3-forecast.pdf` as one token, SQLite's splits it; both then find `forecast`).
    static func searchableNames(_ names: [String]) -> String {
        names.map { name in
            let words = name.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).joined(separator: " ")
            return words == name ? name : name + " " + words
        }.joined(separator: " ")
    }

    /// At most this many files on one message.
    static let maxAttachments = 10

    /// The `attachments` of a send: distinct upload ids, at most `maxAttachments`.
    private static func attachmentIDs(_ raw: [String]?, into validator: inout Validator) -> [UUID] {
        guard let raw else { return [] }
        if raw.count > maxAttachments {
            validator.add("attachments", "too_many", "at most \(maxAttachments) files on one message")
            return []
        }
        let ids = raw.compactMap(UUID.init(wire:))
        if ids.count != raw.count {
            validator.add("attachments", "invalid", "must be upload ids")
            return []
        }
        if Set(ids).count != ids.count {
            validator.add("attachments", "duplicate", "names the same upload twice")
            return []
        }
        return ids
    }

    /// Validates a `reply_to` id: a message of the same conversation. Replies to a reply join
    /// the root's thread (threads are one level deep, as in Slack and Zulip).
    private func resolveReply(_ raw: String?, in access: ConversationService.Access,
                              into validator: inout Validator) async throws -> (id: UUID, seq: Int)? {
        guard let raw else { return nil }
        guard let id = UUID(wire: raw) else {
            validator.add("reply_to", "invalid", "must be a message id")
            return nil
        }
        guard let target = try await Message.find(id, on: db), target.$conversation.id == access.conversationID else {
            validator.add("reply_to", "not_in_conversation", "must be a message in this conversation")
            return nil
        }
        if target.isDeleted {
            validator.add("reply_to", "deleted", "cannot reply to a deleted message")
            return nil
        }
        if let rootID = target.replyToID, let rootSeq = target.replyToSeq { return (rootID, rootSeq) }
        return (id, target.seq)
    }

    // MARK: Editing

    enum EditMode: Sendable { case replace, mergePatch }

    /// PUT replaces the editable representation (`body` and `reply_to` must both be present);
    /// a merge patch changes only the keys given. Both honour `If-Match`.
    func edit(_ access: ConversationService.Access, seq: Int, _ input: EditMessageRequest, mode: EditMode,
              ifMatch: String?, editorID: UUID) async throws -> Message {
        _ = try access.requireMember()
        let message = try await find(access, seq: seq)
        guard message.$author.id == editorID else {
            throw ConversationError.notTheAuthor
        }
        guard !message.isDeleted else { throw ConversationError.conflict("A deleted message cannot be edited.") }
        try Self.checkPrecondition(ifMatch, message)
        var validator = Validator()
        if input.attachments != nil {
            validator.add("attachments", "read_only", "a message's files cannot be changed; delete it and send it again")
        }
        var newBody = message.body
        if let body = input.body {
            if let valid = validator.text(body, "body", length: 1...maxBodyLength) { newBody = valid }
        } else if mode == .replace {
            validator.add("body", "required", "is required (PUT replaces the whole message; use PATCH to change part of it)")
        }
        if mode == .replace, input.replyTo == nil {
            validator.add("reply_to", "required", "is required (null for none) when replacing with PUT")
        }
        var newReply: (id: UUID, seq: Int)? = message.replyToID.map { ($0, message.replyToSeq ?? 0) }
        if let replyTo = input.replyTo {
            if let raw = replyTo, UUID(wire: raw) == message.id {
                validator.add("reply_to", "invalid", "a message cannot reply to itself")
            } else {
                newReply = try await resolveReply(replyTo, in: access, into: &validator)
            }
        }
        try validator.check()
        if newReply?.seq == message.seq || (newReply?.seq ?? 0) > message.seq {
            throw ValidationError(field: "reply_to", code: "invalid", message: "must be an earlier message")
        }
        guard newBody != message.body || newReply?.id != message.replyToID else { return message }

        let content = newBody == message.body ? message.contentJSON : try await structure(of: newBody, in: access).json
        // An edit is looked at again; it never clears a mark a moderator has yet to look at.
        if newBody != message.body {
            let verdict = try await screen(newBody, in: access.conversationID, by: editorID)
            let pending = MessageModeration.State(rawValue: message.moderationState ?? "")
            let stricter = verdict.action == .hold || (verdict.action == .flag && pending != .held)
            if stricter || pending == nil || pending == .approved { Self.mark(message, with: verdict, keeping: pending) }
        }
        let now = clock.now()
        let previous = message.body
        message.body = newBody
        message.contentJSON = content
        message.replyToID = newReply?.id
        message.replyToSeq = newReply?.seq
        message.editedAt = now
        message.version += 1
        try await db.writeTransaction(writes) { tx, outbox in
            try await MessageRevision(messageID: message.id!, body: previous, at: now).create(on: tx)
            try await message.save(on: tx)
            try await Self.record(message, as: MessageEdited.self, in: outbox, at: now)
        }
        return message
    }

    /// Asks the screen about a body; a blocked one is refused here, before any write.
    private func screen(_ body: String, in conversationID: UUID, by authorID: UUID) async throws -> ScreeningVerdict {
        // A message of files alone has no text to score.
        guard !body.isEmpty else { return .unscreened }
        let verdict = try await screening.screen(body: body, conversationID: conversationID, authorID: authorID, on: db)
        if verdict.action == .block {
            throw ValidationError(field: "body", code: "blocked",
                                  message: verdict.reason ?? "this message breaks the rules of this server")
        }
        return verdict
    }

    /// Writes a verdict onto a message about to be saved (an allowed edit of an approved
    /// message stays approved).
    private static func mark(_ message: Message, with verdict: ScreeningVerdict, keeping pending: MessageModeration.State? = nil) {
        message.moderationScore = verdict.score
        message.moderationModel = verdict.model
        switch verdict.action {
        case .flag: message.moderationState = MessageModeration.State.flagged.rawValue
        case .hold: message.moderationState = MessageModeration.State.held.rawValue
        case .allow, .block: message.moderationState = pending == .approved ? pending?.rawValue : nil
        }
    }

    /// Records a message's event as the members see it; a held message is also recorded
    /// whole for its author's other devices. `whole` is its DTO when the caller has it already.
    private static func record<E: WrappingEvent>(_ message: Message, as _: E.Type, in outbox: Outbox, at now: Date,
                                                 whole: MessageDTO? = nil) async throws where E.Value == MessageDTO {
        let whole = try whole ?? MessageDTO(message)
        try await outbox.record(E(whole.seen(by: nil)), in: message.$conversation.id, at: now)
        if whole.moderation?.state == .held {
            try await outbox.record(MessageHeld(whole), in: message.$conversation.id, visibleTo: message.$author.id, at: now)
        }
    }

    // MARK: Moderation

    /// A moderator's decision on a message, applied in the caller's transaction: approving
    /// shows a held message to everyone (`message.approved`); removing makes it a tombstone,
    /// as a deletion does (`message.deleted`). Returns the message as it now is.
    enum ModerationDecision: Sendable { case approve, remove }

    static func moderate(_ messageID: UUID, _ decision: ModerationDecision, at now: Date, tx: any Database,
                         outbox: Outbox) async throws -> MessageDTO {
        guard let message = try await Message.find(messageID, on: tx) else { throw Self.notFound }
        switch decision {
        case .approve:
            guard !message.isDeleted else { throw ConversationError.conflict("A deleted message cannot be approved.") }
            message.moderationState = MessageModeration.State.approved.rawValue
            message.version += 1
            try await message.save(on: tx)
            // Everyone's event: no score (as the members' reads show it).
            try await outbox.record(MessageApproved(try MessageDTO(message).seen(by: nil)), in: message.$conversation.id, at: now)
        case .remove:
            guard !message.isDeleted else { throw ConversationError.conflict("The message is already deleted.") }
            message.body = ""
            message.attachmentNames = nil
            message.deletedAt = now
            message.moderationState = MessageModeration.State.removed.rawValue
            message.version += 1
            try await MessageRevision.query(on: tx).filter(\.$message.$id == messageID).delete()
            try await Reaction.query(on: tx).filter(\.$message.$id == messageID).delete()
            try await message.save(on: tx)
            try await outbox.record(MessageDeleted(try MessageDTO(message).seen(by: nil)), in: message.$conversation.id, at: now)
        }
        return try MessageDTO(message)
    }

    /// `@channel` and `@here` reach everyone: in a conversation of more members than this,
    /// only its owner and admins may use them.
    static let wideMentionLimit = 50

    /// The structure of a body, its `@handle`s resolved against the conversation's members,
    /// and the same as stored (JSON).
    private func structure(of body: String, in access: ConversationService.Access) async throws -> (nodes: [MessageFormat.Node], json: String) {
        let handles = MessageFormat.mentionedHandles(in: body)
        let members = try await Membership.members(withHandles: handles, in: access.conversationID, on: db)
        let nodes = MessageFormat.parse(body, members: members)
        if MessageFormat.mentions(in: nodes).everyone, access.membership?.canManage != true,
           try await Membership.count(in: access.conversationID, on: db) > Self.wideMentionLimit {
            throw ValidationError(field: "body", code: "mention_not_allowed",
                                  message: "@channel and @here in a conversation of more than \(Self.wideMentionLimit) members are for its owner and admins")
        }
        return (nodes, String(decoding: try EventLog.encoder.encode(nodes), as: UTF8.self))
    }

    static func checkPrecondition(_ ifMatch: String?, _ message: Message) throws {
        guard let ifMatch else { return }
        let tags = ifMatch.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard tags.contains("*") || tags.contains(where: message.isVersion) else {
            throw ConversationError.messageChanged
        }
    }

    /// Soft delete: the seq stays as a tombstone, the body, its revisions and reactions go.
    func delete(_ access: ConversationService.Access, seq: Int, ifMatch: String?, by userID: UUID) async throws {
        let membership = try access.requireMember()
        let message = try await find(access, seq: seq)
        guard message.$author.id == userID || membership.canManage else {
            throw ConversationError.mayNotDelete
        }
        try Self.checkPrecondition(ifMatch, message)
        guard !message.isDeleted else { return }
        let now = clock.now()
        message.body = ""
        message.attachmentNames = nil
        message.deletedAt = now
        message.version += 1
        try await db.writeTransaction(writes) { tx, outbox in
            try await MessageRevision.query(on: tx).filter(\.$message.$id == message.id!).delete()
            try await Reaction.query(on: tx).filter(\.$message.$id == message.id!).delete()
            try await message.save(on: tx)
            try await outbox.record(MessageDeleted(try MessageDTO(message).seen(by: nil)), in: access.conversationID, at: now)
        }
    }

    // MARK: Reactions

    /// Adds a reaction; `added` is false when it was already there (idempotent).
    func react(_ access: ConversationService.Access, seq: Int, emoji raw: String?, userID: UUID) async throws -> Bool {
        _ = try access.requireMember()
        let message = try await find(access, seq: seq)
        let emoji = try Self.validateEmoji(raw)
        guard !message.isDeleted else { throw ConversationError.conflict("A deleted message cannot get reactions.") }
        let existing = try await Reaction.query(on: db)
            .filter(\.$message.$id == message.id!).filter(\.$user.$id == userID).filter(\.$emoji == emoji).first()
        if existing != nil { return false }
        let now = clock.now()
        do {
            try await db.writeTransaction(writes) { tx, outbox in
                try await Reaction(messageID: message.id!, userID: userID, emoji: emoji, at: now).create(on: tx)
                try await outbox.record(ReactionAdded(ReactionChange(messageID: message.id!.wire, seq: message.seq, userID: userID.wire, emoji: emoji)), in: access.conversationID, at: now)
            }
        } catch where (error as? any DatabaseError)?.isConstraintFailure == true {
            return false
        }
        return true
    }

    func unreact(_ access: ConversationService.Access, seq: Int, emoji raw: String?, userID: UUID) async throws {
        _ = try access.requireMember()
        let message = try await find(access, seq: seq)
        let emoji = try Self.validateEmoji(raw)
        guard let existing = try await Reaction.query(on: db)
            .filter(\.$message.$id == message.id!).filter(\.$user.$id == userID).filter(\.$emoji == emoji).first()
        else { return }
        let now = clock.now()
        try await db.writeTransaction(writes) { tx, outbox in
            try await existing.delete(on: tx)
            try await outbox.record(ReactionRemoved(ReactionChange(messageID: message.id!.wire, seq: message.seq, userID: userID.wire, emoji: emoji)), in: access.conversationID, at: now)
        }
    }

    /// One emoji grapheme, or a `:short_name:` of at most 32 characters.
    static func validateEmoji(_ raw: String?) throws -> String {
        guard let raw, !raw.isEmpty else {
            throw ValidationError(field: "emoji", code: "required", message: "is required")
        }
        if raw.hasPrefix(":"), raw.hasSuffix(":"), raw.count >= 3, raw.count <= 32 {
            let name = raw.dropFirst().dropLast()
            if name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || "_+-".unicodeScalars.contains($0) }) {
                return raw
            }
        }
        if raw.count == 1, let character = raw.first,
           character.unicodeScalars.contains(where: { $0.properties.isEmojiPresentation || ($0.properties.isEmoji && $0.value > 0x238C) }) {
            return raw
        }
        throw ValidationError(field: "emoji", code: "invalid", message: "must be one emoji or a :short_name: of at most 32 characters")
    }
}
