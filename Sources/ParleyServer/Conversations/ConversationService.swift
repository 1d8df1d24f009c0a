import Fluent
import SQLKit
import Vapor

/// Conversations, channels and their members, independent of HTTP.
struct ConversationService: Sendable {
    let db: any Database
    let clock: AppClock
    let writes: WriteGate?

    static let maxInitialMembers = 256
    static let titleLength = 1...100
    static let topicLength = 0...250

    // MARK: Access

    /// A conversation as the caller may see it. Anyone who may not see it gets 404, never 403,
    /// so ids leak nothing.
    struct Access: Sendable {
        let conversation: Conversation
        let membership: Membership?

        var conversationID: UUID { conversation.id! }

        /// Members write; a non-member of a public channel may read but must join first.
        func requireMember() throws -> Membership {
            guard let membership else {
                throw ConversationError.notAMember
            }
            return membership
        }

        func requireManager() throws -> Membership {
            let membership = try requireMember()
            guard membership.canManage else {
                throw ConversationError.notAManager("Only the conversation's owner or admins may do this.")
            }
            return membership
        }
    }

    func access(_ id: Conversation.IDValue, userID: UUID) async throws -> Access {
        guard let sql = db as? any SQLDatabase else {
            guard let conversation = try await Conversation.find(id, on: db) else { throw Self.notFound }
            let membership = try await Membership.find(conversationID: id, userID: userID, on: db)
            guard membership != nil || conversation.isPublicChannel else { throw Self.notFound }
            return Access(conversation: conversation, membership: membership)
        }
        // Every conversation-scoped request starts here, so it is one plain SQL query (the
        // conversation and the caller's membership) and the models are filled in by hand:
        // Fluent's query builder and its reflection cost several times the query (perf).
        guard let row = try await sql.raw("""
            SELECT c.kind AS kind, c.visibility AS visibility, c.title AS title, c.topic AS topic, c.last_seq AS last_seq,
                   c.direct_key AS direct_key, c.created_by AS created_by, c.created_at AS created_at,
                   c.updated_at AS updated_at, c.last_activity_at AS last_activity_at,
                   m.id AS m_id, m.role AS m_role, m.last_read_seq AS m_last_read_seq, m.muted AS m_muted, m.notify AS m_notify,
                   m.joined_at AS m_joined_at
            FROM conversations c
            LEFT JOIN memberships m ON m.conversation_id = c.id AND m.user_id = \(bind: userID)
            WHERE c.id = \(bind: id) AND c.deleted_at IS NULL
            """).first().map(AccessRow.init)
        else { throw Self.notFound }
        let conversation = try row.conversation(id: id)
        let membership = try row.membership(conversationID: id, userID: userID)
        guard membership != nil || conversation.isPublicChannel else { throw Self.notFound }
        return Access(conversation: conversation, membership: membership)
    }

    private struct AccessRow {
        let kind: String, visibility: String?, title: String?, topic: String?, last_seq: Int, direct_key: String?
        let created_by: UUID, created_at: Date?, updated_at: Date?, last_activity_at: Date
        let m_id: UUID?, m_role: String?, m_last_read_seq: Int?, m_muted: Bool?, m_notify: String?, m_joined_at: Date?

        /// Column by column rather than through `Decodable`: the rows' direct conversions
        /// (`DirectSQLiteRow`) skip the keyed-container machinery on every request.
        init(_ row: any SQLRow) throws {
            kind = try row.decode(column: "kind", as: String.self)
            visibility = try row.decode(column: "visibility", as: String?.self)
            title = try row.decode(column: "title", as: String?.self)
            topic = try row.decode(column: "topic", as: String?.self)
            last_seq = try row.decode(column: "last_seq", as: Int.self)
            direct_key = try row.decode(column: "direct_key", as: String?.self)
            created_by = try row.decode(column: "created_by", as: UUID.self)
            created_at = try row.decode(column: "created_at", as: Date?.self)
            updated_at = try row.decode(column: "updated_at", as: Date?.self)
            last_activity_at = try row.decode(column: "last_activity_at", as: Date.self)
            m_id = try row.decode(column: "m_id", as: UUID?.self)
            m_role = try row.decode(column: "m_role", as: String?.self)
            m_last_read_seq = try row.decode(column: "m_last_read_seq", as: Int?.self)
            m_muted = try row.decode(column: "m_muted", as: Bool?.self)
            m_notify = try row.decode(column: "m_notify", as: String?.self)
            m_joined_at = try row.decode(column: "m_joined_at", as: Date?.self)
        }

        func conversation(id: UUID) throws -> Conversation {
            guard let kind = Conversation.Kind(rawValue: kind) else { throw StorageError.unreadable("conversation kind \(kind)") }
            let conversation = Conversation()
            conversation.id = id
            conversation.kind = kind
            conversation.visibility = visibility.flatMap(Conversation.Visibility.init(rawValue:))
            conversation.title = title
            conversation.topic = topic
            conversation.lastSeq = last_seq
            conversation.directKey = direct_key
            conversation.$creator.id = created_by
            conversation.createdAt = created_at
            conversation.updatedAt = updated_at
            conversation.lastActivityAt = last_activity_at
            conversation.$id.exists = true
            return conversation
        }

        func membership(conversationID: UUID, userID: UUID) throws -> Membership? {
            guard let m_id, let raw = m_role, let role = Membership.Role(rawValue: raw) else { return nil }
            let membership = Membership(conversationID: conversationID, userID: userID, role: role,
                                        lastReadSeq: m_last_read_seq ?? 0, at: m_joined_at ?? Date())
            membership.id = m_id
            membership.muted = m_muted ?? false
            membership.notify = m_notify.flatMap(Membership.NotificationLevel.init(rawValue:))
            membership.$id.exists = true
            return membership
        }
    }

    static let notFound = ConversationError.conversationNotFound

    // MARK: Create

    /// Creates a conversation; a direct conversation with the same two people returns the
    /// existing one (`created == false`).
    func create(_ input: CreateConversationRequest, creatorID: UUID) async throws -> (ConversationDTO, created: Bool) {
        var validator = Validator()
        let kind = validator.require(input.kind, "kind").flatMap { raw -> Conversation.Kind? in
            guard let kind = Conversation.Kind(rawValue: raw) else {
                validator.add("kind", "invalid", "must be one of direct, group, channel")
                return nil
            }
            return kind
        }
        var memberIDs: [UUID] = []
        for (index, raw) in (input.memberIDs ?? []).enumerated() {
            if let id = UUID(wire: raw) { memberIDs.append(id) }
            else { validator.add("member_ids[\(index)]", "invalid", "must be a user id") }
        }
        memberIDs = memberIDs.filter { $0 != creatorID }.uniqued()
        let others = memberIDs
        if memberIDs.count > Self.maxInitialMembers {
            validator.add("member_ids", "too_many", "may name at most \(Self.maxInitialMembers) users")
        }
        var title: String?
        var topic: String?
        var visibility: Conversation.Visibility?
        switch kind {
        case .direct:
            if input.title != nil { validator.add("title", "not_allowed", "direct conversations have no title") }
            if input.topic != nil { validator.add("topic", "not_allowed", "direct conversations have no topic") }
            if input.visibility != nil { validator.add("visibility", "not_allowed", "only channels have a visibility") }
            if memberIDs.count != 1, input.memberIDs != nil {
                validator.add("member_ids", "invalid", "a direct conversation has exactly one other person")
            } else if input.memberIDs == nil {
                validator.add("member_ids", "required", "is required")
            }
        case .group, .channel:
            title = validator.text(input.title, "title", length: Self.titleLength, required: kind == .channel)
            topic = validator.text(input.topic, "topic", length: Self.topicLength, required: false)
            if kind == .channel {
                visibility = parseVisibility(input.visibility, into: &validator) ?? .public
            } else if input.visibility != nil {
                validator.add("visibility", "not_allowed", "only channels have a visibility")
            }
        case nil:
            break
        }
        try validator.check()
        guard let kind else { throw Self.notFound }

        // Every named member must exist.
        if !memberIDs.isEmpty {
            let found = Set(try await User.query(on: db).filter(\.$id ~~ memberIDs).all(\.$id))
            let missing = (input.memberIDs ?? []).enumerated().filter { UUID(wire: $0.element).map { !found.contains($0) && $0 != creatorID } ?? false }
            if !missing.isEmpty {
                throw ValidationError(missing.map { FieldError(field: "member_ids[\($0.offset)]", code: "unknown_user", message: "is not a user") })
            }
        }

        let now = clock.now()
        let directKey = kind == .direct ? Conversation.directKey(creatorID, memberIDs[0]) : nil
        if let directKey, let existing = try await Conversation.query(on: db).filter(\.$directKey == directKey).first() {
            let membership = try await Membership.find(conversationID: existing.requireID(), userID: creatorID, on: db)
            return (try ConversationDTO(existing, membership: membership), false)
        }
        let conversation = Conversation(kind: kind, visibility: visibility, title: title, topic: topic,
                                        directKey: directKey, creatorID: creatorID, at: now)
        let conversationID = conversation.id!
        let ownerRole: Membership.Role = kind == .direct ? .member : .owner
        let creatorMembership = Membership(conversationID: conversationID, userID: creatorID, role: ownerRole, at: now)
        do {
            try await db.writeTransaction(writes) { tx, outbox in
                try await conversation.create(on: tx)
                try await creatorMembership.create(on: tx)
                for memberID in others {
                    try await Membership(conversationID: conversationID, userID: memberID, role: .member, at: now).create(on: tx)
                }
                // The members join first, so the conversation's creation, like every later event,
                // goes to the members it has at that point (live and on replay alike).
                for memberID in [creatorID] + others {
                    try await outbox.record(MemberJoined(MemberChange(userID: memberID.wire, role: memberID == creatorID ? ownerRole : .member)), in: conversationID, at: now)
                }
                let dto = try ConversationDTO(conversation, membership: nil)
                try await outbox.record(ConversationCreated(dto), in: conversationID, at: now)
            }
        } catch where (error as? any DatabaseError)?.isConstraintFailure == true && directKey != nil {
            // Another request created the same pair first: return theirs.
            guard let existing = try await Conversation.query(on: db).filter(\.$directKey == directKey!).first() else { throw error }
            let membership = try await Membership.find(conversationID: existing.requireID(), userID: creatorID, on: db)
            return (try ConversationDTO(existing, membership: membership), false)
        }
        return (try ConversationDTO(conversation, membership: creatorMembership, unreadCount: 0), true)
    }

    private func parseVisibility(_ raw: String?, into validator: inout Validator) -> Conversation.Visibility? {
        guard let raw else { return nil }
        guard let visibility = Conversation.Visibility(rawValue: raw) else {
            validator.add("visibility", "invalid", "must be public or private")
            return nil
        }
        return visibility
    }

    // MARK: Read

    func show(_ access: Access, userID: UUID) async throws -> ConversationDTO {
        let unread = try await unreadCounts(for: [access.conversationID], userID: userID)[access.conversationID] ?? 0
        let last = try await lastMessages(of: [access.conversation], viewer: userID)[access.conversationID]
        let count = try await Membership.query(on: db).filter(\.$conversation.$id == access.conversationID).count()
        return try ConversationDTO(access.conversation, membership: access.membership,
                                   unreadCount: access.membership == nil ? nil : unread, lastMessage: last, memberCount: count)
    }

    /// The caller's conversations, most recent activity first, each with its unread count and
    /// last message, in a fixed number of statements whatever the page size.
    func list(userID: UUID, cursor: String?, limit: Int) async throws -> Page<ConversationDTO> {
        var query = Conversation.query(on: db)
            .join(Membership.self, on: \Conversation.$id == \Membership.$conversation.$id)
            .filter(Membership.self, \.$user.$id == userID)
        if let cursor {
            guard let (activity, id) = ActivityCursor.decode(cursor) else {
                throw ValidationError(field: "cursor", code: "invalid", message: "is not a cursor this server issued")
            }
            query = query.group(.or) { or in
                or.filter(\.$lastActivityAt < activity)
                or.group(.and) { and in
                    and.filter(\.$lastActivityAt == activity)
                    and.filter(\.$id < id)
                }
            }
        }
        let rows = try await query
            .sort(\.$lastActivityAt, .descending)
            .sort(\.$id, .descending)
            .limit(limit + 1)
            .all()
        let page = Array(rows.prefix(limit))
        let ids = try page.map { try $0.requireID() }
        let unread = try await unreadCounts(for: ids, userID: userID)
        let last = try await lastMessages(of: page, viewer: userID)
        let items = try page.map { conversation in
            let id = try conversation.requireID()
            return try ConversationDTO(conversation, membership: try conversation.joined(Membership.self),
                                       unreadCount: unread[id] ?? 0, lastMessage: last[id])
        }
        let next = rows.count > limit ? page.last.map { ActivityCursor.encode($0.lastActivityAt, $0.id!) } : nil
        return Page(items: items, nextCursor: next)
    }

    /// Messages from others after each read marker, for many conversations in one statement.
    func unreadCounts(for ids: [UUID], userID: UUID) async throws -> [UUID: Int] {
        guard !ids.isEmpty, let sql = db as? any SQLDatabase else { return [:] }
        struct Row: Decodable { let conversation_id: UUID; let unread: Int }
        let rows = try await sql.raw("""
            SELECT m.conversation_id AS conversation_id, COUNT(*) AS unread
            FROM messages m
            JOIN memberships mb ON mb.conversation_id = m.conversation_id AND mb.user_id = \(bind: userID)
            WHERE m.conversation_id IN (\(binds: ids))
              AND m.seq > mb.last_read_seq AND m.author_id <> \(bind: userID) AND m.deleted_at IS NULL
            GROUP BY m.conversation_id
            """).all(decoding: Row.self)
        return Dictionary(rows.map { ($0.conversation_id, $0.unread) }, uniquingKeysWith: { a, _ in a })
    }

    /// The newest message of each conversation, in one statement (plus one for reactions).
    func lastMessages(of conversations: [Conversation], viewer: UUID) async throws -> [UUID: MessageDTO] {
        let wanted = conversations.filter { $0.lastSeq > 0 }
        guard !wanted.isEmpty else { return [:] }
        let messages = try await Message.query(on: db).group(.or) { or in
            for conversation in wanted {
                or.group(.and) { and in
                    and.filter(\.$conversation.$id == conversation.id!)
                    and.filter(\.$seq == conversation.lastSeq)
                }
            }
        }.all()
        let dtos = try await MessageService.dtos(for: messages, viewer: viewer, on: db, withReplyCounts: false)
        return Dictionary(dtos.map { (UUID(wire: $0.conversationID)!, $0) }, uniquingKeysWith: { a, _ in a })
    }

    // MARK: Update and delete

    func update(_ access: Access, with patch: UpdateConversationRequest, by userID: UUID) async throws -> ConversationDTO {
        let membership = try access.requireManager()
        let conversation = access.conversation
        var validator = Validator()
        if conversation.kind == .direct, patch.title != nil || patch.topic != nil || patch.visibility != nil {
            validator.add(patch.title != nil ? "title" : patch.topic != nil ? "topic" : "visibility",
                          "not_allowed", "direct conversations have no title, topic or visibility")
        }
        if let title = patch.title {
            if let title {
                if let valid = validator.text(title, "title", length: Self.titleLength) { conversation.title = valid }
            } else if conversation.kind == .channel {
                validator.add("title", "required", "a channel needs a title")
            } else {
                conversation.title = nil
            }
        }
        if let topic = patch.topic {
            if let topic {
                if let valid = validator.text(topic, "topic", length: Self.topicLength, required: false) { conversation.topic = valid }
            } else {
                conversation.topic = nil
            }
        }
        if let visibility = patch.visibility {
            if conversation.kind != .channel {
                validator.add("visibility", "not_allowed", "only channels have a visibility")
            } else if let value = parseVisibility(visibility ?? "", into: &validator) {
                conversation.visibility = value
            }
        }
        try validator.check()
        guard conversation.hasChanges else { return try await show(access, userID: userID) }
        let now = clock.now()
        try await db.writeTransaction(writes) { tx, outbox in
            try await conversation.save(on: tx)
            try await outbox.record(ConversationUpdated(try ConversationDTO(conversation, membership: nil)), in: access.conversationID, at: now)
        }
        _ = membership
        return try await show(access, userID: userID)
    }

    func delete(_ access: Access) async throws {
        let membership = try access.requireMember()
        guard membership.role == .owner else {
            throw ConversationError.notTheOwner("Only the owner may delete a conversation.")
        }
        let now = clock.now()
        try await db.writeTransaction(writes) { tx, outbox in
            try await outbox.record(ConversationDeleted(id: access.conversationID.wire), in: access.conversationID, at: now)
            try await access.conversation.delete(on: tx)
        }
    }

    // MARK: Directory

    /// Public channels, optionally filtered by a title substring, alphabetical.
    func channels(query q: String?, cursor: String?, limit: Int) async throws -> Page<ConversationDTO> {
        var query = Conversation.query(on: db)
            .filter(\.$kind == .channel)
            .filter(\.$visibility == .public)
        if let q = q?.trimmingCharacters(in: .whitespaces), !q.isEmpty {
            let pattern = "%" + LikePattern.escape(q.lowercased()) + "%"
            query = query.filter(.sql(embed: "LOWER(\(ident: "title")) LIKE \(bind: pattern)"))
        }
        if let cursor {
            guard let (title, id) = TitleCursor.decode(cursor) else {
                throw ValidationError(field: "cursor", code: "invalid", message: "is not a cursor this server issued")
            }
            query = query.group(.or) { or in
                or.filter(\.$title > title)
                or.group(.and) { and in
                    and.filter(\.$title == title)
                    and.filter(\.$id > id)
                }
            }
        }
        let rows = try await query.sort(\.$title).sort(\.$id).limit(limit + 1).all()
        let page = Array(rows.prefix(limit))
        let counts = try await memberCounts(page.map { $0.id! })
        let items = try page.map { try ConversationDTO($0, membership: nil, memberCount: counts[$0.id!] ?? 0) }
        let next = rows.count > limit ? page.last.map { TitleCursor.encode($0.title ?? "", $0.id!) } : nil
        return Page(items: items, nextCursor: next)
    }

    func memberCounts(_ ids: [UUID]) async throws -> [UUID: Int] {
        guard !ids.isEmpty, let sql = db as? any SQLDatabase else { return [:] }
        struct Row: Decodable { let conversation_id: UUID; let members: Int }
        let rows = try await sql.raw("""
            SELECT conversation_id, COUNT(*) AS members FROM memberships
            WHERE conversation_id IN (\(binds: ids)) GROUP BY conversation_id
            """).all(decoding: Row.self)
        return Dictionary(rows.map { ($0.conversation_id, $0.members) }, uniquingKeysWith: { a, _ in a })
    }

    // MARK: Membership

    func join(_ access: Access, userID: UUID) async throws -> (ConversationDTO, joined: Bool) {
        if access.membership != nil { return (try await show(access, userID: userID), false) }
        guard access.conversation.isPublicChannel else { throw Self.notFound }
        let now = clock.now()
        let membership = Membership(conversationID: access.conversationID, userID: userID, role: .member,
                                    lastReadSeq: access.conversation.lastSeq, at: now)
        do {
            try await db.writeTransaction(writes) { tx, outbox in
                try await membership.create(on: tx)
                try await outbox.record(MemberJoined(MemberChange(userID: userID.wire, role: .member)), in: access.conversationID, at: now)
            }
        } catch where (error as? any DatabaseError)?.isConstraintFailure == true {
            // Joined concurrently by another request of the same user.
        }
        let refreshed = Access(conversation: access.conversation, membership: membership)
        return (try await show(refreshed, userID: userID), true)
    }

    /// Leaves a group or channel. An owner who leaves hands ownership to the longest-standing
    /// admin, or else the longest-standing member.
    func leave(_ access: Access, userID: UUID) async throws {
        let membership = try access.requireMember()
        guard access.conversation.kind != .direct else {
            throw ConversationError.conflict("A direct conversation cannot be left.")
        }
        try await removeMember(membership, from: access, reason: "left")
    }

    func members(_ access: Access, cursor: String?, limit: Int) async throws -> Page<MemberDTO> {
        var query = Membership.query(on: db)
            .filter(\.$conversation.$id == access.conversationID)
            .join(User.self, on: \Membership.$user.$id == \User.$id)
        if let cursor {
            guard let after = UUID(wire: cursor) else {
                throw ValidationError(field: "cursor", code: "invalid", message: "is not a cursor this server issued")
            }
            query = query.filter(\.$user.$id > after)
        }
        let rows = try await query.sort(\.$user.$id).limit(limit + 1).all()
        let page = Array(rows.prefix(limit))
        let items = try page.map { MemberDTO(user: try PublicUserDTO(try $0.joined(User.self)), role: $0.role, joinedAt: $0.joinedAt) }
        return Page(items: items, nextCursor: rows.count > limit ? page.last?.$user.id.wire : nil)
    }

    func addMember(_ access: Access, _ input: AddMemberRequest) async throws -> (MemberDTO, added: Bool) {
        let manager = try access.requireManager()
        guard access.conversation.kind != .direct else {
            throw ValidationError(field: "user_id", code: "not_allowed", message: "direct conversations have exactly two people")
        }
        var validator = Validator()
        let userID = validator.require(input.userID, "user_id").flatMap { raw -> UUID? in
            guard let id = UUID(wire: raw) else { validator.add("user_id", "invalid", "must be a user id"); return nil }
            return id
        }
        let role = try parseRole(input.role, default: .member, into: &validator)
        if role == .owner { validator.add("role", "not_allowed", "a conversation has one owner; hand it over with PATCH …/members/{user_id}") }
        try validator.check()
        guard let userID, let role else { throw Self.notFound }
        if role > .member, manager.role != .owner, role >= manager.role {
            throw ConversationError.roleTooHigh("You may not grant a role equal to or above your own.")
        }
        guard let user = try await User.find(userID, on: db) else {
            throw ValidationError(field: "user_id", code: "unknown_user", message: "is not a user")
        }
        if let existing = try await Membership.find(conversationID: access.conversationID, userID: userID, on: db) {
            return (MemberDTO(user: try PublicUserDTO(user), role: existing.role, joinedAt: existing.joinedAt), false)
        }
        let now = clock.now()
        let membership = Membership(conversationID: access.conversationID, userID: userID, role: role, at: now)
        do {
            try await db.writeTransaction(writes) { tx, outbox in
                try await membership.create(on: tx)
                try await outbox.record(MemberJoined(MemberChange(userID: userID.wire, role: role)), in: access.conversationID, at: now)
            }
        } catch where (error as? any DatabaseError)?.isConstraintFailure == true {
            // Added concurrently by another request: report the membership that won.
            if let existing = try await Membership.find(conversationID: access.conversationID, userID: userID, on: db) {
                return (MemberDTO(user: try PublicUserDTO(user), role: existing.role, joinedAt: existing.joinedAt), false)
            }
            throw error
        }
        return (MemberDTO(user: try PublicUserDTO(user), role: role, joinedAt: now), true)
    }

    func changeRole(_ access: Access, userID: UUID, _ input: ChangeRoleRequest) async throws -> MemberDTO {
        let manager = try access.requireManager()
        guard let target = try await Membership.find(conversationID: access.conversationID, userID: userID, on: db),
              let user = try await User.find(userID, on: db)
        else { throw ConversationError.memberNotFound }
        var validator = Validator()
        guard let role = try parseRole(validator.require(input.role, "role"), default: nil, into: &validator) else {
            try validator.check()
            throw ValidationError(field: "role", code: "required", message: "is required")
        }
        try validator.check()
        guard access.conversation.kind != .direct else {
            throw ValidationError(field: "role", code: "not_allowed", message: "direct conversations have no roles")
        }
        if target.role == role { return MemberDTO(user: try PublicUserDTO(user), role: role, joinedAt: target.joinedAt) }
        // Owners may do anything; admins may move members and admins between member and admin.
        if manager.role != .owner && (target.role == .owner || role == .owner) {
            throw ConversationError.notTheOwner("Only the owner may change ownership.")
        }
        let now = clock.now()
        try await db.writeTransaction(writes) { tx, outbox in
            if role == .owner {
                // Handing over ownership: the old owner becomes an admin.
                manager.role = .admin
                try await manager.save(on: tx)
                try await outbox.record(MemberRoleChanged(MemberChange(userID: manager.$user.id.wire, role: .admin)), in: access.conversationID, at: now)
            }
            target.role = role
            try await target.save(on: tx)
            try await outbox.record(MemberRoleChanged(MemberChange(userID: userID.wire, role: role)), in: access.conversationID, at: now)
        }
        return MemberDTO(user: try PublicUserDTO(user), role: role, joinedAt: target.joinedAt)
    }

    func removeMember(_ access: Access, userID: UUID, by callerID: UUID) async throws {
        let caller = try access.requireMember()
        guard let target = try await Membership.find(conversationID: access.conversationID, userID: userID, on: db)
        else { throw ConversationError.memberNotFound }
        if userID == callerID { return try await leave(access, userID: callerID) }
        guard caller.canManage else {
            throw ConversationError.notAManager("Only the conversation's owner or admins may remove members.")
        }
        guard access.conversation.kind != .direct else { throw ConversationError.conflict("Direct conversations have exactly two people.") }
        guard target.role < caller.role || caller.role == .owner, target.role != .owner else {
            throw ConversationError.roleTooHigh("You may not remove a member whose role is equal to or above yours.")
        }
        try await removeMember(target, from: access, reason: "removed")
    }

    private func removeMember(_ membership: Membership, from access: Access, reason: String) async throws {
        let now = clock.now()
        try await db.writeTransaction(writes) { tx, outbox in
            if membership.role == .owner {
                let successor = try await Membership.query(on: tx)
                    .filter(\.$conversation.$id == access.conversationID)
                    .filter(\.$id != membership.id!)
                    .sort(\.$role)   // "admin" sorts before "member"
                    .sort(\.$joinedAt)
                    .first()
                if let successor {
                    successor.role = .owner
                    try await successor.save(on: tx)
                    try await outbox.record(MemberRoleChanged(MemberChange(userID: successor.$user.id.wire, role: .owner)), in: access.conversationID, at: now)
                }
            }
            try await membership.delete(on: tx)
            try await outbox.record(MemberLeft(MemberChange(userID: membership.$user.id.wire, role: membership.role, reason: reason)), in: access.conversationID, at: now)
        }
    }

    private func parseRole(_ raw: String?, default fallback: Membership.Role?, into validator: inout Validator) throws -> Membership.Role? {
        guard let raw else { return fallback }
        guard let role = Membership.Role(rawValue: raw) else {
            validator.add("role", "invalid", "must be one of owner, admin, member")
            return nil
        }
        return role
    }

    // MARK: Read markers

    /// Moves the caller's read marker forward (never back).
    func markRead(_ access: Access, _ input: ReadMarkerRequest, userID: UUID) async throws -> ReadMarkerDTO {
        let membership = try access.requireMember()
        var validator = Validator()
        if let seq = validator.require(input.seq, "seq"), !(0...access.conversation.lastSeq).contains(seq) {
            validator.add("seq", "out_of_range", "must be between 0 and the conversation's last seq (\(access.conversation.lastSeq))")
        }
        try validator.check()
        let seq = input.seq!
        if seq > membership.lastReadSeq {
            let now = clock.now()
            try await db.writeTransaction(writes) { tx, outbox in
                guard let sql = tx as? any SQLDatabase else { return }
                // Conditional, so two concurrent markers can only move it forward.
                let moved = try await sql.raw("""
                    UPDATE memberships SET last_read_seq = \(bind: seq)
                    WHERE id = \(bind: membership.id!) AND last_read_seq < \(bind: seq) RETURNING id
                    """).all()
                if !moved.isEmpty {
                    try await outbox.record(ReadMarkerMoved(userID: userID.wire, lastReadSeq: seq), in: access.conversationID, visibleTo: userID, at: now)
                }
            }
        }
        let current = try await Membership.find(conversationID: access.conversationID, userID: userID, on: db)
        let unread = try await unreadCounts(for: [access.conversationID], userID: userID)[access.conversationID] ?? 0
        return ReadMarkerDTO(lastReadSeq: current?.lastReadSeq ?? seq, unreadCount: unread)
    }

    /// My settings in a conversation: mute, and which messages notify me. Only the keys given
    /// change; `notify: null` goes back to the conversation kind's default.
    func updateMembership(_ access: Access, _ input: MembershipSettingsRequest, userID: UUID) async throws -> MembershipDTO {
        _ = try access.requireMember()
        var validator = Validator()
        var level: Membership.NotificationLevel?? = nil
        if let raw = input.notify {
            if let raw {
                if let parsed = Membership.NotificationLevel(rawValue: raw) { level = .some(parsed) }
                else { validator.add("notify", "invalid", "must be all, mentions or nothing (or null for the default)") }
            } else {
                level = .some(nil)
            }
        }
        if case .some(nil) = input.muted { validator.add("muted", "invalid_type", "must be true or false") }
        try validator.check()
        let muted = input.muted ?? nil
        let notify = level
        let conversationID = access.conversationID
        let now = clock.now()
        try await db.writeTransaction(writes) { tx, outbox in
            try await Membership.updateSettings(conversationID: conversationID, userID: userID, muted: muted, notify: notify, on: tx)
            // Every tab of mine learns of it.
            try await outbox.record(MembershipSettingsChanged(muted: muted, notify: notify.map { $0?.rawValue }), in: conversationID,
                                    visibleTo: userID, at: now)
        }
        guard let current = try await Membership.find(conversationID: conversationID, userID: userID, on: db) else {
            throw Self.notFound
        }
        return MembershipDTO(current, kind: access.conversation.kind)
    }
}
