import AgentGraph
import Fluent
import FluentSQL
import Foundation
import SQLKit

/// One answer an assistant gives to one message: queued by the message, executed as a job,
/// traced step by step. The owner of the `assistant_runs` and `assistant_run_steps` SQL.
final class AssistantRun: Model, @unchecked Sendable {
    static let schema = "assistant_runs"

    enum Status: String, Codable, Sendable, CaseIterable {
        /// Waits for an earlier run of the same assistant in the same conversation.
        case pending
        /// Has a job; a worker will start or resume it.
        case queued
        case running
        /// Stopped at a tool that needs a person's approval.
        case awaitingApproval = "awaiting_approval"
        case completed
        case failed
        case cancelled
        /// Refused because a run was going (the `reject` busy policy); a notice says so.
        case rejected

        var isActive: Bool { [.pending, .queued, .running, .awaitingApproval].contains(self) }
        static let active: [Status] = allCases.filter(\.isActive)
    }

    @ID(custom: "id", generatedBy: .user) var id: UUID?
    @Field(key: "assistant_id") var assistantID: UUID
    @Field(key: "conversation_id") var conversationID: UUID
    @Field(key: "trigger_message_id") var triggerMessageID: UUID
    @Field(key: "trigger_seq") var triggerSeq: Int
    @Field(key: "requester_id") var requesterID: UUID
    @Enum(key: "status") var status: Status
    @OptionalField(key: "reply_seq") var replySeq: Int?
    @OptionalField(key: "error") var error: String?
    @Field(key: "prompt_tokens") var promptTokens: Int
    @Field(key: "completion_tokens") var completionTokens: Int
    @Field(key: "cost_usd") var costUSD: Double
    /// The pending approval request (JSON), while awaiting approval.
    @OptionalField(key: "approval") var approvalJSON: String?
    /// The answer to the latest approval request (JSON).
    @OptionalField(key: "decision") var decisionJSON: String?
    @Field(key: "approval_round") var approvalRound: Int
    @Field(key: "cancel_requested") var cancelRequested: Bool
    /// Structured citations of the reply (JSON array).
    @OptionalField(key: "citations") var citationsJSON: String?
    @Field(key: "created_at") var createdAt: Date
    @OptionalField(key: "started_at") var startedAt: Date?
    @OptionalField(key: "finished_at") var finishedAt: Date?

    init() {}

    var threadID: String { "assistant-run:" + (id?.wire ?? "") }
    var approval: ApprovalRequest? { approvalJSON.flatMap { try? EventLog.decoder.decode(ApprovalRequest.self, from: Data($0.utf8)) } }
    var decision: ApprovalDecision? { decisionJSON.flatMap { try? EventLog.decoder.decode(ApprovalDecision.self, from: Data($0.utf8)) } }
    var citations: [Citation] { citationsJSON.flatMap { try? EventLog.decoder.decode([Citation].self, from: Data($0.utf8)) } ?? [] }
}

/// What the approval interrupt asks: one tool call, and who may answer.
struct ApprovalRequest: Codable, Sendable, Equatable {
    var callID: String
    var tool: String
    /// The arguments as the model wrote them (JSON text).
    var arguments: String
    /// User ids who may approve: the member who asked and the conversation's managers.
    var approvers: [String]

    enum CodingKeys: String, CodingKey {
        case tool, arguments, approvers
        case callID = "call_id"
    }
}

/// A person's answer to an approval request; the model sees the reason.
struct ApprovalDecision: Codable, Sendable, Equatable {
    var approved: Bool
    var reason: String?
    var by: String
}

/// A message of the conversation a reply cites, checked to exist and be visible to the asker.
typealias Citation = MessageCitation

extension AssistantRun {
    /// A run as plain SQL reads it. Every run a worker executes is read or returned this way:
    /// Fluent's model decoding reflects over the model's properties on every row, which cost
    /// more than the statement (seen in perf).
    struct Row: Decodable {
        let id: UUID
        let assistant_id: UUID
        let conversation_id: UUID
        let trigger_message_id: UUID
        let trigger_seq: Int
        let requester_id: UUID
        let status: Status
        let reply_seq: Int?
        let error: String?
        let prompt_tokens: Int
        let completion_tokens: Int
        let cost_usd: Double
        let approval: String?
        let decision: String?
        let approval_round: Int
        let cancel_requested: Bool
        let citations: String?
        let created_at: Date
        let started_at: Date?
        let finished_at: Date?
    }

    /// The columns of `Row`, in a select list.
    private static let columns: SQLQueryString = """
        id, assistant_id, conversation_id, trigger_message_id, trigger_seq, requester_id, status, reply_seq, error,
        prompt_tokens, completion_tokens, cost_usd, approval, decision, approval_round, cancel_requested, citations,
        created_at, started_at, finished_at
        """

    /// A stored run, for reading: Fluent sees every field as set, so saving one through Fluent
    /// would write every column. Runs change only through this file's SQL.
    convenience init(_ row: Row) {
        self.init()
        id = row.id
        $id.exists = true
        assistantID = row.assistant_id
        conversationID = row.conversation_id
        triggerMessageID = row.trigger_message_id
        triggerSeq = row.trigger_seq
        requesterID = row.requester_id
        status = row.status
        replySeq = row.reply_seq
        error = row.error
        promptTokens = row.prompt_tokens
        completionTokens = row.completion_tokens
        costUSD = row.cost_usd
        approvalJSON = row.approval
        decisionJSON = row.decision
        approvalRound = row.approval_round
        cancelRequested = row.cancel_requested
        citationsJSON = row.citations
        createdAt = row.created_at
        startedAt = row.started_at
        finishedAt = row.finished_at
    }

    /// One run by id.
    static func find(_ id: UUID, on db: any Database) async throws -> AssistantRun? {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw("SELECT \(columns) FROM assistant_runs WHERE id = \(bind: id)").first(decoding: Row.self).map(AssistantRun.init)
    }

    /// What deciding about the next run needs of an active one.
    struct ActiveRun: Decodable {
        let id: UUID
        let status: Status
        let created_at: Date
    }

    /// The active runs of one assistant in one conversation, oldest first.
    ///
    /// Sorted here, not in SQL: an `ORDER BY created_at` led SQLite's planner (without
    /// statistics) to walk every run of the assistant, in every conversation, through the
    /// (assistant, created_at) index, 340 µs a call at 1,800 runs and growing with them. Without
    /// it the query reads only the few active rows through the (conversation, assistant,
    /// status) index.
    static func active(assistantID: UUID, conversationID: UUID, on db: any Database) async throws -> [ActiveRun] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        let states = SQLList(Status.active.map { SQLBind($0.rawValue) })
        return try await sql.raw("""
            SELECT id, status, created_at FROM assistant_runs
            WHERE conversation_id = \(bind: conversationID) AND assistant_id = \(bind: assistantID) AND status IN (\(states))
            """).all(decoding: ActiveRun.self)
            .sorted { ($0.created_at, $0.id.uuidString) < ($1.created_at, $1.id.uuidString) }
    }

    /// A conversation's runs, newest first.
    static func list(conversationID: UUID, before cursor: Date?, limit: Int, on db: any Database) async throws -> [AssistantRun] {
        var query = AssistantRun.query(on: db).filter(\.$conversationID == conversationID)
        if let cursor { query = query.filter(\.$createdAt < cursor) }
        return try await query.sort(\.$createdAt, .descending).limit(limit).all()
    }

    /// Inserts a run unless one exists for the same assistant and message; returns whether it did.
    static func insert(_ run: AssistantRun, on db: any Database) async throws -> Bool {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let id: UUID }
        return try await sql.raw("""
            INSERT INTO assistant_runs (id, assistant_id, conversation_id, trigger_message_id, trigger_seq, requester_id, status,
                                        prompt_tokens, completion_tokens, cost_usd, approval_round, cancel_requested, created_at,
                                        started_at)
            VALUES (\(bind: run.id), \(bind: run.assistantID), \(bind: run.conversationID), \(bind: run.triggerMessageID),
                    \(bind: run.triggerSeq), \(bind: run.requesterID), \(bind: run.status.rawValue), 0, 0, 0, 0, \(bind: false),
                    \(bind: run.createdAt), \(bind: run.startedAt))
            ON CONFLICT DO NOTHING RETURNING id
            """).first(decoding: Row.self) != nil
    }

    /// Moves a run from one of `from` to `to`, setting `extra` columns too; false when the run
    /// was not in one of those states (someone else moved it first).
    static func transition(_ id: UUID, from: [Status], to: Status, set extra: [(String, any Encodable & Sendable)] = [],
                           on db: any Database) async throws -> Bool {
        struct Moved: Decodable { let id: UUID }
        return try await !moving(id, from: from, to: to, set: extra, returning: "id", on: db).all(decoding: Moved.self).isEmpty
    }

    /// `transition`, returning the run as the change left it (one statement); nil when the run
    /// was not in one of `from`.
    static func transitioned(_ id: UUID, from: [Status], to: Status, set extra: [(String, any Encodable & Sendable)] = [],
                             on db: any Database) async throws -> AssistantRun? {
        try await moving(id, from: from, to: to, set: extra, returning: columns, on: db).first(decoding: Row.self).map(AssistantRun.init)
    }

    /// `extra`'s columns are this file's callers' own names, never input.
    private static func moving(_ id: UUID, from: [Status], to: Status, set extra: [(String, any Encodable & Sendable)],
                               returning: SQLQueryString, on db: any Database) throws -> SQLRawBuilder {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        var assignments: SQLQueryString = "status = \(bind: to.rawValue)"
        for (column, value) in extra { assignments = assignments + ", \(ident: column) = \(bind: value)" }
        let states = SQLList(from.map { SQLBind($0.rawValue) })
        return sql.raw("UPDATE assistant_runs SET \(assignments) WHERE id = \(bind: id) AND status IN (\(states)) RETURNING \(returning)")
    }

    /// Adds a model call's usage to the run.
    static func addUsage(_ id: UUID, prompt: Int, completion: Int, cost: Double, on sql: any SQLDatabase) async throws {
        try await sql.raw("""
            UPDATE assistant_runs SET prompt_tokens = prompt_tokens + \(bind: prompt),
                completion_tokens = completion_tokens + \(bind: completion), cost_usd = cost_usd + \(bind: cost)
            WHERE id = \(bind: id)
            """).run()
    }

    /// Tokens an assistant used since `start`, in one conversation and for one requester.
    static func tokensUsed(assistantID: UUID, conversationID: UUID, requesterID: UUID, since start: Date,
                           on db: any Database) async throws -> (conversation: Int, requester: Int) {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let in_conversation: Int?; let by_requester: Int? }
        let row = try await sql.raw("""
            SELECT CAST(SUM(CASE WHEN conversation_id = \(bind: conversationID) THEN prompt_tokens + completion_tokens ELSE 0 END) AS BIGINT) AS in_conversation,
                   CAST(SUM(CASE WHEN requester_id = \(bind: requesterID) THEN prompt_tokens + completion_tokens ELSE 0 END) AS BIGINT) AS by_requester
            FROM assistant_runs WHERE assistant_id = \(bind: assistantID) AND created_at >= \(bind: start)
            """).first(decoding: Row.self)
        return (row?.in_conversation ?? 0, row?.by_requester ?? 0)
    }

    /// Whether someone asked for this run to stop.
    static func cancelRequested(_ id: UUID, on db: any Database) async throws -> Bool {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Flag: Decodable { let cancel_requested: Bool }
        return try await sql.raw("SELECT cancel_requested FROM assistant_runs WHERE id = \(bind: id)")
            .first(decoding: Flag.self)?.cancel_requested ?? false
    }
}

/// One entry of a run's trace: a model call, a tool call, an approval, an error.
final class AssistantRunStep: Model, @unchecked Sendable {
    static let schema = "assistant_run_steps"

    @ID(custom: "id", generatedBy: .user) var id: UUID?
    @Field(key: "run_id") var runID: UUID
    @Field(key: "position") var position: Int
    @Field(key: "kind") var kind: String
    @Field(key: "name") var name: String
    @Field(key: "started_at") var startedAt: Date
    @Field(key: "duration_ms") var durationMS: Double
    /// What the step saw and did (JSON object).
    @Field(key: "detail") var detail: String

    init() {}

    static func append(runID: UUID, kind: String, name: String, startedAt: Date, durationMS: Double, detail: JSONValue,
                       on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        try await append(runID: runID, kind: kind, name: name, startedAt: startedAt, durationMS: durationMS, detail: detail, on: sql)
    }

    static func append(runID: UUID, kind: String, name: String, startedAt: Date, durationMS: Double, detail: JSONValue,
                       on sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO assistant_run_steps (id, run_id, position, kind, name, started_at, duration_ms, detail)
            SELECT \(bind: UUID.timeOrdered()), \(bind: runID), COALESCE(MAX(position), 0) + 1, \(bind: kind), \(bind: name),
                   \(bind: startedAt), \(bind: durationMS), \(bind: detail.jsonText)
            FROM assistant_run_steps WHERE run_id = \(bind: runID)
            """).run()
    }

    static func steps(of runID: UUID, on db: any Database) async throws -> [AssistantRunStep] {
        try await AssistantRunStep.query(on: db).filter(\.$runID == runID).sort(\.$position).all()
    }
}
