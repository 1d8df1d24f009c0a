import Fluent
import SQLKit
import Vapor

/// The through-table of the User–Conversation many-to-many, with the member's role and read state.
final class Membership: Model, @unchecked Sendable {
    static let schema = "memberships"

    enum Role: String, Codable, Sendable, CaseIterable, Comparable {
        case owner, admin, member

        var rank: Int {
            switch self {
            case .owner: 2
            case .admin: 1
            case .member: 0
            }
        }

        static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }
    }

    // identity
    @ID(key: .id) var id: UUID?
    @Parent(key: "conversation_id") var conversation: Conversation
    @Parent(key: "user_id") var user: User

    // data
    @Enum(key: "role") var role: Role
    @Field(key: "last_read_seq") var lastReadSeq: Int
    @Field(key: "muted") var muted: Bool
    /// Which messages notify this member (nil: the default for the conversation's kind).
    @OptionalEnum(key: "notify") var notify: NotificationLevel?

    // timestamps
    @Field(key: "joined_at") var joinedAt: Date

    init() {}

    init(conversationID: UUID, userID: UUID, role: Role, lastReadSeq: Int = 0, at now: Date) {
        self.$conversation.id = conversationID
        self.$user.id = userID
        self.role = role
        self.lastReadSeq = lastReadSeq
        self.muted = false
        self.joinedAt = now
    }

    var canManage: Bool { role >= .admin }

    /// Which messages of a conversation notify a member.
    enum NotificationLevel: String, Codable, Sendable, CaseIterable {
        /// Every message (the default in direct conversations and groups).
        case all
        /// Mentions of the member, `@channel`/`@here`, and replies in threads they took part in
        /// (the default in channels).
        case mentions
        case nothing

        static func defaultLevel(for kind: Conversation.Kind) -> NotificationLevel {
            kind == .channel ? .mentions : .all
        }
    }

    func notificationLevel(in kind: Conversation.Kind) -> NotificationLevel {
        notify ?? NotificationLevel.defaultLevel(for: kind)
    }
}

extension Membership {
    static func find(conversationID: UUID, userID: UUID, on db: any Database) async throws -> Membership? {
        try await Membership.query(on: db)
            .filter(\.$conversation.$id == conversationID)
            .filter(\.$user.$id == userID)
            .first()
    }
}

// Membership questions other features ask (live delivery, replay, presence). The
// `memberships` table's SQL lives here and in the Conversations feature's services only.
extension Membership {
    /// The current members of a conversation and the log's newest event id, read in one
    /// statement so both come from one snapshot (live delivery rewinds from there).
    static func members(of conversationID: UUID, withLogPositionOn db: any Database) async throws -> (members: Set<UUID>, logPosition: Int?) {
        guard let sql = db as? any SQLDatabase else { return ([], nil) }
        struct Row: Decodable { let user_id: UUID?; let horizon: Int? }
        let rows = try await sql.raw("""
            SELECT m.user_id AS user_id, h.horizon AS horizon
            FROM (SELECT MAX(id) AS horizon FROM events) h
            LEFT JOIN memberships m ON m.conversation_id = \(bind: conversationID)
            """).all(decoding: Row.self)
        return (Set(rows.compactMap(\.user_id)), rows.first?.horizon)
    }

    /// Everyone else who shares a conversation of at most `limit` members with `userID`.
    ///
    /// A conversation's size is checked by looking for a member past the limit (`LIMIT 1
    /// OFFSET limit`), so a big channel costs `limit` index entries, not all of its members.
    static func peers(of userID: UUID, inConversationsUpTo limit: Int, on db: any Database) async throws -> Set<UUID> {
        guard let sql = db as? any SQLDatabase else { return [] }
        struct Row: Decodable { let user_id: UUID }
        let rows = try await sql.raw("""
            SELECT DISTINCT b.user_id AS user_id FROM memberships a
            JOIN memberships b ON b.conversation_id = a.conversation_id
            WHERE a.user_id = \(bind: userID) AND b.user_id <> \(bind: userID)
            AND NOT EXISTS (SELECT 1 FROM memberships c WHERE c.conversation_id = a.conversation_id LIMIT 1 OFFSET \(bind: limit))
            """).all(decoding: Row.self)
        return Set(rows.map(\.user_id))
    }

    /// Those of `users` (other than `userID`) who share a conversation of any size with `userID`.
    static func sharing(with userID: UUID, among users: Set<UUID>, on db: any Database) async throws -> Set<UUID> {
        guard let sql = db as? any SQLDatabase else { return [] }
        let others = users.subtracting([userID])
        guard !others.isEmpty else { return [] }
        struct Row: Decodable { let user_id: UUID }
        let list = SQLList(others.map { SQLBind($0) })
        let rows = try await sql.raw("""
            SELECT DISTINCT user_id FROM memberships WHERE user_id IN (\(list))
            AND \(conversationCondition(memberID: userID))
            """).all(decoding: Row.self)
        return Set(rows.map(\.user_id))
    }

    /// The conversations `userID` is a member of now.
    static func conversationIDs(of userID: UUID, on db: any Database) async throws -> [UUID] {
        guard let sql = db as? any SQLDatabase else { return [] }
        struct Row: Decodable { let conversation_id: UUID }
        return try await sql.raw("SELECT conversation_id FROM memberships WHERE user_id = \(bind: userID)")
            .all(decoding: Row.self).map(\.conversation_id)
    }

    /// An SQL condition on a `conversation_id` column: one of the conversations `userID` is a
    /// member of now (for queries of other tables that must not list them all as binds).
    static func conversationCondition(memberID userID: UUID) -> SQLQueryString {
        "conversation_id IN (SELECT conversation_id FROM memberships WHERE user_id = \(bind: userID))"
    }

    /// Which of `userIDs` are members of the conversation and users of `kind`.
    static func members(_ userIDs: [UUID], ofKind kind: User.Kind, in conversationID: UUID, on db: any Database) async throws -> [UUID] {
        guard !userIDs.isEmpty else { return [] }
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let user_id: UUID }
        return try await sql.raw("""
            SELECT m.user_id AS user_id FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.conversation_id = \(bind: conversationID) AND m.user_id IN (\(binds: userIDs)) AND u.kind = \(bind: kind.rawValue)
            """).all(decoding: Row.self).map(\.user_id)
    }

    /// A conversation's kind and, when it is direct, its member who is a user of `kind` (if
    /// any); nil when there is no such conversation. Both are fixed once the conversation
    /// exists (a direct conversation's two members cannot leave), so callers may keep them.
    static func directMember(ofKind kind: User.Kind, in conversationID: UUID,
                             on db: any Database) async throws -> (kind: Conversation.Kind, userID: UUID?)? {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let kind: String; let user_id: UUID? }
        guard let row = try await sql.raw("""
            SELECT c.kind AS kind, CASE WHEN c.kind = \(bind: Conversation.Kind.direct.rawValue) THEN (
                SELECT m.user_id FROM memberships m JOIN users u ON u.id = m.user_id
                WHERE m.conversation_id = c.id AND u.kind = \(bind: kind.rawValue) LIMIT 1) END AS user_id
            FROM conversations c WHERE c.id = \(bind: conversationID)
            """).first(decoding: Row.self),
            let conversationKind = Conversation.Kind(rawValue: row.kind)
        else { return nil }
        return (conversationKind, row.user_id)
    }

    /// Whether every one of `userIDs` is a member of the conversation.
    static func allMembers(_ userIDs: Set<UUID>, of conversationID: UUID, on db: any Database) async throws -> Bool {
        guard !userIDs.isEmpty else { return true }
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let n: Int }
        let found = try await sql.raw("""
            SELECT COUNT(*) AS n FROM memberships
            WHERE conversation_id = \(bind: conversationID) AND user_id IN (\(SQLList(userIDs.map { SQLBind($0) })))
            """).first(decoding: Row.self)?.n ?? 0
        return found == userIDs.count
    }

    /// The members whose handles are among `handles` (lower-cased), by handle: who an
    /// `@handle` in a message names.
    static func members(withHandles handles: Set<String>, in conversationID: UUID, on db: any Database) async throws -> [String: UUID] {
        guard !handles.isEmpty, let sql = db as? any SQLDatabase else { return [:] }
        struct Row: Decodable { let handle: String; let user_id: UUID }
        let rows = try await sql.raw("""
            SELECT u.handle AS handle, u.id AS user_id FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.conversation_id = \(bind: conversationID) AND u.handle IN (\(binds: Array(handles)))
            """).all(decoding: Row.self)
        return Dictionary(rows.map { ($0.handle, $0.user_id) }, uniquingKeysWith: { first, _ in first })
    }

    /// What notifies each human member of a conversation: muted, and the chosen level.
    struct NotificationSetting: Sendable, Equatable {
        let userID: UUID
        let muted: Bool
        let level: NotificationLevel
    }

    /// The human members of a conversation with their notification settings (the default
    /// level resolved by the conversation's kind), in one statement.
    ///
    /// With `candidates`, a channel's members are narrowed in SQL to those and the members
    /// who asked for every message: in a channel (default level `mentions`) nobody else can be
    /// notified unless everyone is mentioned, and a channel of 10,000 would otherwise send
    /// 10,000 rows for every message. `complete` says whether every member was read (not a
    /// channel, or no `candidates`), so the answer may serve other messages too.
    static func notificationSettings(of conversationID: UUID, narrowedTo candidates: Set<UUID>? = nil, on db: any Database) async throws
        -> (kind: Conversation.Kind?, members: [NotificationSetting], complete: Bool) {
        guard let sql = db as? any SQLDatabase else { return (nil, [], true) }
        struct Row: Decodable { let user_id: UUID; let muted: Bool; let notify: String?; let kind: String }
        var query: SQLQueryString = """
            SELECT m.user_id AS user_id, m.muted AS muted, m.notify AS notify, c.kind AS kind
            FROM memberships m JOIN users u ON u.id = m.user_id JOIN conversations c ON c.id = m.conversation_id
            WHERE m.conversation_id = \(bind: conversationID) AND u.kind = \(bind: User.Kind.human.rawValue)
            """
        if let candidates {
            query = query + " AND (c.kind <> \(bind: Conversation.Kind.channel.rawValue) OR m.notify = \(bind: NotificationLevel.all.rawValue)"
            if !candidates.isEmpty { query = query + " OR m.user_id IN (\(SQLList(candidates.map { SQLBind($0) })))" }
            query = query + ")"
        }
        let rows = try await sql.raw(query).all(decoding: Row.self)
        let kind = rows.first.flatMap { Conversation.Kind(rawValue: $0.kind) }
        return (kind, rows.map { row in
            NotificationSetting(userID: row.user_id, muted: row.muted,
                                level: row.notify.flatMap(NotificationLevel.init(rawValue:)) ?? .defaultLevel(for: kind ?? .group))
        }, candidates == nil || (kind != nil && kind != .channel))
    }

    /// Sets a member's mute and notification level; nil leaves that part as it is.
    static func updateSettings(conversationID: UUID, userID: UUID, muted: Bool?, notify: NotificationLevel??, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        var assignments: [SQLQueryString] = []
        if let muted { assignments.append("muted = \(bind: muted)") }
        if let notify { assignments.append("notify = \(bind: notify?.rawValue)") }
        guard !assignments.isEmpty else { return }
        let set = assignments.dropFirst().reduce(assignments[0]) { $0 + ", " + $1 }
        try await sql.raw("UPDATE memberships SET " + set + " WHERE conversation_id = \(bind: conversationID) AND user_id = \(bind: userID)").run()
    }

    /// Adds a member (role `member`, everything before now read) in the caller's transaction;
    /// false when they were one already. The caller records `member.joined`.
    static func admit(_ userID: UUID, to conversationID: UUID, at now: Date, on db: any Database) async throws -> Bool {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let id: UUID }
        return try await sql.raw("""
            INSERT INTO memberships (id, conversation_id, user_id, role, last_read_seq, muted, joined_at)
            SELECT \(bind: UUID.timeOrdered()), c.id, \(bind: userID), \(bind: Role.member.rawValue), c.last_seq, \(bind: false), \(bind: now)
            FROM conversations c WHERE c.id = \(bind: conversationID) AND c.deleted_at IS NULL
            ON CONFLICT DO NOTHING RETURNING id
            """).first(decoding: Row.self) != nil
    }

    /// How many members a conversation has.
    static func count(in conversationID: UUID, on db: any Database) async throws -> Int {
        try await Membership.query(on: db).filter(\.$conversation.$id == conversationID).count()
    }

    /// The owners and admins of a conversation.
    static func managers(of conversationID: UUID, on db: any Database) async throws -> [UUID] {
        try await Membership.query(on: db).filter(\.$conversation.$id == conversationID)
            .filter(\.$role ~~ [.owner, .admin]).all().map { $0.$user.id }
    }
}
