import Foundation
import Vapor

// The assistants' domain events: how a run's status reaches every member (stored, so a
// client that reconnects learns how a run ended). Token deltas are not events: they are
// ephemeral `assistant.delta` frames.

extension EventType {
    static let runStarted = EventType("run.started")
    static let runApprovalRequested = EventType("run.approval_requested")
    static let runCompleted = EventType("run.completed")
    static let runFailed = EventType("run.failed")
    static let runCancelled = EventType("run.cancelled")
}

struct RunStarted: WrappingEvent {
    static let type = EventType.runStarted
    var run: RunDTO
    init(_ run: RunDTO) { self.run = run }
    var value: RunDTO { run }
}

struct RunApprovalRequested: WrappingEvent {
    static let type = EventType.runApprovalRequested
    var run: RunDTO
    init(_ run: RunDTO) { self.run = run }
    var value: RunDTO { run }
}

struct RunCompleted: WrappingEvent {
    static let type = EventType.runCompleted
    var run: RunDTO
    init(_ run: RunDTO) { self.run = run }
    var value: RunDTO { run }
}

struct RunFailed: WrappingEvent {
    static let type = EventType.runFailed
    var run: RunDTO
    init(_ run: RunDTO) { self.run = run }
    var value: RunDTO { run }
}

struct RunCancelled: WrappingEvent {
    static let type = EventType.runCancelled
    var run: RunDTO
    init(_ run: RunDTO) { self.run = run }
    var value: RunDTO { run }
}

/// A run as clients see it (in events, `GET /v1/runs/{id}` adds the trace).
struct RunDTO: Content, Equatable {
    var id: String
    var assistantID: String
    var conversationID: String
    var triggerSeq: Int
    var requesterID: String
    var status: String
    var replySeq: Int?
    var error: String?
    var usage: RunUsage
    var approval: ApprovalRequest?
    var decision: ApprovalDecision?
    var citations: [Citation]
    var createdAt: Date
    var startedAt: Date?
    var finishedAt: Date?

    struct RunUsage: Codable, Sendable, Equatable {
        var promptTokens: Int
        var completionTokens: Int
        var costUSD: Double

        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
            case costUSD = "cost_usd"
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, status, error, usage, approval, decision, citations
        case assistantID = "assistant_id"
        case conversationID = "conversation_id"
        case triggerSeq = "trigger_seq"
        case requesterID = "requester_id"
        case replySeq = "reply_seq"
        case createdAt = "created_at"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
    }

    init(_ run: AssistantRun) {
        id = run.id?.wire ?? ""
        assistantID = run.assistantID.wire
        conversationID = run.conversationID.wire
        triggerSeq = run.triggerSeq
        requesterID = run.requesterID.wire
        status = run.status.rawValue
        replySeq = run.replySeq
        error = run.error
        usage = RunUsage(promptTokens: run.promptTokens, completionTokens: run.completionTokens, costUSD: run.costUSD)
        approval = run.status == .awaitingApproval ? run.approval : nil
        decision = run.decision
        citations = run.citations
        createdAt = run.createdAt
        startedAt = run.startedAt
        finishedAt = run.finishedAt
    }
}

extension EventType {
    static let runApprovalDecided = EventType("run.approval_decided")
}

/// Someone approved or rejected the tool call a run waited on; the run is queued to resume.
struct RunApprovalDecided: WrappingEvent {
    static let type = EventType.runApprovalDecided
    var run: RunDTO
    init(_ run: RunDTO) { self.run = run }
    var value: RunDTO { run }
}
