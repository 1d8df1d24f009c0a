import Fluent
import SQLKit
import Vapor

struct Seeder {
    let db: any Database
    var random: SplitMix64
    let now: Date
    let writes: WriteGate?

    struct Summary { var users = 0, conversations = 0, memberships = 0, messages = 0, events = 0 }

    static let words = """
        the a to and of in is it you that for on we this with can be have are not do at just so but \
        deploy build release review merge test fix bug issue ticket meeting lunch coffee today tomorrow \
        friday weekend plan design api server client database query index cache latency error timeout \
        thanks please sure yes no maybe great nice ok sounds good looks agreed done shipped blocked \
        customer report dashboard metrics alert incident rollback migration schema token login search
        """.split(separator: " ").map(String.init)

    private var cumulative: [String: [Double]] = [:]

    init(db: any Database, random: SplitMix64, now: Date, writes: WriteGate? = nil) {
        self.db = db
        self.writes = writes
        self.random = random
        self.now = now
    }

    /// An index 0…n-1 drawn with probability ∝ 1/(index+1)^s.
    mutating func zipf(_ n: Int, s: Double = 1.1) -> Int {
        let key = "\(n)/\(s)"
        let table: [Double]
        if let cached = cumulative[key] {
            table = cached
        } else {
            var running = 0.0
            table = (1...n).map { rank in
                running += 1 / pow(Double(rank), s)
                return running
            }
            cumulative[key] = table
        }
        let pick = Double.random(in: 0..<table[n - 1], using: &random)
        var low = 0, high = n - 1
        while low < high {
            let mid = (low + high) / 2
            if table[mid] > pick { high = mid } else { low = mid + 1 }
        }
        return low
    }

    mutating func sentence() -> String {
        // Mostly short; a long tail of paragraphs.
        let roll = Double.random(in: 0..<1, using: &random)
        let count = roll < 0.6 ? Int.random(in: 1...8, using: &random)
            : roll < 0.95 ? Int.random(in: 8...30, using: &random)
            : Int.random(in: 30...200, using: &random)
        var words: [String] = []
        for _ in 0..<count { words.append(Self.words.randomElement(using: &random)!) }
        return words.joined(separator: " ").prefix(4000).description
    }

    mutating func run(users userCount: Int, conversations conversationCount: Int, messages messageCount: Int,
                      passwordHash: String) async throws -> Summary {
        guard let sql = db as? any SQLDatabase else { return Summary() }
        var summary = Summary()
        let existing = try await User.query(on: db).filter(\.$handle =~ "seed-user-").count()
        let userIDs = (0..<userCount).map { _ in UUID() }
        try await db.writeTransaction(writes) { [userIDs, now] tx in
            guard let sql = tx as? any SQLDatabase else { return }
            for chunk in userIDs.enumerated().chunked(500) {
                var insert = sql.insert(into: User.schema)
                    .columns("id", "handle", "display_name", "email", "password_hash", "role", "kind", "created_at", "updated_at")
                var profiles = sql.insert(into: Profile.schema).columns("id", "user_id", "bio", "time_zone", "updated_at")
                for (index, id) in chunk {
                    let handle = String(format: "seed-user-%05d", existing + index + 1)
                    insert = insert.values(SQLBind(id), SQLBind(handle), SQLBind("Seed User \(existing + index + 1)"), SQLLiteral.null,
                                           SQLBind(passwordHash), SQLBind("user"), SQLBind("human"), SQLBind(now), SQLBind(now))
                    profiles = profiles.values(SQLBind(UUID()), SQLBind(id), SQLBind(""), SQLLiteral.null, SQLBind(now))
                }
                try await insert.run()
                try await profiles.run()
            }
        }
        summary.users = userCount
        _ = sql

        // Conversations: a few big channels, many groups, a long tail of direct messages.
        struct Plan { var id: UUID; var kind: Conversation.Kind; var members: [UUID]; var messages: Int; var title: String? }
        var plans: [Plan] = []
        for index in 0..<conversationCount {
            let roll = Double.random(in: 0..<1, using: &random)
            let kind: Conversation.Kind = roll < 0.15 ? .channel : roll < 0.45 ? .group : .direct
            var members: [UUID]
            switch kind {
            case .direct:
                members = Array(userIDs.shuffled(using: &random).prefix(2))
            case .group:
                members = Array(userIDs.shuffled(using: &random).prefix(Int.random(in: 3...min(12, userCount), using: &random)))
            case .channel:
                let size = max(2, userCount / (1 + zipf(20)))
                members = Array(userIDs.shuffled(using: &random).prefix(size))
            }
            let title: String? = switch kind {
            case .direct: nil
            case .group: "group \(index + 1)"
            case .channel: "channel-\(index + 1)"
            }
            plans.append(Plan(id: UUID(), kind: kind, members: members, messages: 0, title: title))
        }
        // Direct pairs must be unique.
        var pairs = Set<String>()
        plans = plans.filter { plan in
            guard plan.kind == .direct else { return true }
            return pairs.insert(Conversation.directKey(plan.members[0], plan.members[1])).inserted
        }
        for _ in 0..<messageCount { plans[zipf(plans.count)].messages += 1 }

        let start = now.addingTimeInterval(-30 * 24 * 3600)
        let planned = plans
        try await db.writeTransaction(writes) { [now] tx in
            guard let sql = tx as? any SQLDatabase else { return }
            for chunk in planned.chunked(300) {
                var insert = sql.insert(into: Conversation.schema)
                    .columns("id", "kind", "visibility", "title", "topic", "last_seq", "direct_key", "created_by", "created_at",
                             "updated_at", "last_activity_at", "deleted_at")
                var memberships: [(conversation: UUID, user: UUID, role: String, read: Int)] = []
                for plan in chunk {
                    let directKey: any SQLExpression = plan.kind == .direct
                        ? SQLBind(Conversation.directKey(plan.members[0], plan.members[1])) : SQLLiteral.null
                    insert = insert.values(
                        SQLBind(plan.id), SQLBind(plan.kind.rawValue),
                        plan.kind == .channel ? SQLBind("public") : SQLLiteral.null,
                        plan.title.map { SQLBind($0) } ?? SQLLiteral.null, SQLLiteral.null,
                        SQLBind(plan.messages), directKey, SQLBind(plan.members[0]), SQLBind(start), SQLBind(now),
                        SQLBind(plan.messages > 0 ? now : start), SQLLiteral.null)
                    for (index, member) in plan.members.enumerated() {
                        let role = plan.kind == .direct ? "member" : index == 0 ? "owner" : "member"
                        memberships.append((plan.id, member, role, max(0, plan.messages - index % 7)))
                    }
                }
                try await insert.run()
                for rows in memberships.chunked(2_000) {
                    var batch = sql.insert(into: Membership.schema)
                        .columns("id", "conversation_id", "user_id", "role", "last_read_seq", "muted", "joined_at")
                    for row in rows {
                        batch = batch.values(SQLBind(UUID()), SQLBind(row.conversation), SQLBind(row.user), SQLBind(row.role),
                                             SQLBind(row.read), SQLBind(false), SQLBind(start))
                    }
                    try await batch.run()
                }
            }
        }
        summary.conversations = plans.count
        summary.memberships = plans.reduce(0) { $0 + $1.members.count }

        // Messages, conversation by conversation, spread over the last 30 days.
        var batch: [(conversation: UUID, seq: Int, author: UUID, body: String, at: Date)] = []
        // Many multi-row statements per transaction: fewer commits, fewer WAL checkpoints.
        func flush(_ rows: [(conversation: UUID, seq: Int, author: UUID, body: String, at: Date)]) async throws {
            try await db.writeTransaction(writes) { tx in
                guard let sql = tx as? any SQLDatabase else { return }
                for statement in rows.chunked(1_000) {
                    var messages = sql.insert(into: Message.schema)
                        .columns("id", "conversation_id", "seq", "author_id", "body", "version", "created_at")
                    var events: [(conversationID: UUID, type: EventType, payload: String, at: Date)] = []
                    for row in statement {
                        let id = UUID()
                        messages = messages.values(SQLBind(id), SQLBind(row.conversation), SQLBind(row.seq), SQLBind(row.author),
                                                   SQLBind(row.body), SQLBind(1), SQLBind(row.at))
                        events.append((row.conversation, .messageCreated,
                                       #"{"conversation_id":"\#(row.conversation.wire)","id":"\#(id.wire)","seq":\#(row.seq)}"#, row.at))
                    }
                    try await messages.run()
                    try await EventLog.appendBatch(events, on: tx)
                }
            }
        }
        for plan in plans where plan.messages > 0 {
            let step = 30 * 24 * 3600 / Double(plan.messages + 1)
            for seq in 1...plan.messages {
                let author = plan.members[zipf(plan.members.count, s: 0.8)]
                batch.append((plan.id, seq, author, sentence(), start.addingTimeInterval(step * Double(seq))))
                if batch.count == 20_000 {
                    try await flush(batch)
                    batch.removeAll(keepingCapacity: true)
                }
            }
        }
        if !batch.isEmpty { try await flush(batch) }
        summary.messages = messageCount
        summary.events = messageCount
        return summary
    }
}
