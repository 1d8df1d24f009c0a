import Fluent
import Foundation
import SQLKit
import Vapor

/// Managing assistants (site administrators) and answering their runs (members): reading a
/// run's trace, approving or rejecting a tool call, cancelling.
struct AssistantService: Sendable {
    let db: any Database
    let writes: WriteGate
    let clock: AppClock
    let catalog: ModelCatalog
    let registry: RunRegistry
    /// The MCP servers configured on this server.
    let mcpServers: [String]

    struct Caller: Sendable {
        let userID: UUID
        let isAdministrator: Bool
    }

    // MARK: Assistants

    func create(_ input: AssistantInput, by caller: Caller) async throws -> AssistantDTO {
        guard caller.isAdministrator else { throw AssistantError.notAnAdministrator }
        var validator = Validator()
        let handle = AccountService.validateHandle(input.handle, into: &validator)
        let displayName = input.displayName == nil ? handle : validator.text(input.displayName, "display_name", length: 1...64)
        let assistant = Assistant()
        assistant.id = UUID.timeOrdered()
        assistant.provider = "default"
        assistant.model = "default"
        assistant.systemPrompt = ""
        assistant.toolCalling = .native
        assistant.toolChoice = .auto
        assistant.tools = []
        assistant.approvalTools = []
        assistant.httpTools = []
        assistant.mcpServers = []
        assistant.busyPolicy = .queue
        assistant.maxSteps = 12
        assistant.runTimeoutSeconds = 300
        Self.apply(input, to: assistant, mcpServers: mcpServers, into: &validator)
        try validator.check()
        guard let handle, let displayName, let id = assistant.id else { throw ValidationError(validator.errors) }
        let user = try await db.writeTransaction(writes) { tx in
            let user = try await User.createAssistant(id: id, handle: handle, displayName: displayName, on: tx)
            try await assistant.create(on: tx)
            return user
        }
        return AssistantDTO(assistant, user: user, configured: catalog.names.contains(assistant.provider))
    }

    func list(by caller: Caller) async throws -> [AssistantDTO] {
        guard caller.isAdministrator else { throw AssistantError.notAnAdministrator }
        let assistants = try await Assistant.query(on: db).all()
        let users = try await User.query(on: db).filter(\.$id ~~ assistants.compactMap(\.id)).all()
        let byID = Dictionary(users.compactMap { user in user.id.map { ($0, user) } }, uniquingKeysWith: { first, _ in first })
        let names = Set(catalog.names)
        return assistants.compactMap { assistant in
            assistant.id.flatMap { byID[$0] }.map { AssistantDTO(assistant, user: $0, configured: names.contains(assistant.provider)) }
        }.sorted { $0.handle < $1.handle }
    }

    func get(_ id: UUID, by caller: Caller) async throws -> AssistantDTO {
        guard caller.isAdministrator else { throw AssistantError.notAnAdministrator }
        let (assistant, user) = try await find(id)
        return AssistantDTO(assistant, user: user, configured: catalog.names.contains(assistant.provider))
    }

    func update(_ id: UUID, _ input: AssistantInput, by caller: Caller) async throws -> AssistantDTO {
        guard caller.isAdministrator else { throw AssistantError.notAnAdministrator }
        let (assistant, user) = try await find(id)
        var validator = Validator()
        if input.handle != nil { validator.add("handle", "read_only", "cannot be changed here") }
        if let displayName = input.displayName {
            if let valid = validator.text(displayName, "display_name", length: 1...64) { user.displayName = valid }
        }
        Self.apply(input, to: assistant, mcpServers: mcpServers, into: &validator)
        try validator.check()
        try await db.writeTransaction(writes) { tx in
            try await assistant.save(on: tx)
            if user.hasChanges { try await user.save(on: tx) }
        }
        return AssistantDTO(assistant, user: user, configured: catalog.names.contains(assistant.provider))
    }

    /// Retires an assistant: its configuration goes, so nothing starts it again; its user stays,
    /// so the messages it wrote keep their author. Runs still going are cancelled.
    func delete(_ id: UUID, by caller: Caller) async throws {
        guard caller.isAdministrator else { throw AssistantError.notAnAdministrator }
        let (assistant, _) = try await find(id)
        let now = clock.now()
        let stopping: [UUID] = try await db.writeTransaction(writes) { tx, outbox in
            var stopping: [UUID] = []
            for run in try await AssistantRun.query(on: tx).filter(\.$assistantID == id).filter(\.$status ~~ AssistantRun.Status.active).all() {
                guard let runID = run.id else { continue }
                if run.status == .running {
                    _ = try await AssistantRun.transition(runID, from: [.running], to: .running, set: [("cancel_requested", true)], on: tx)
                    stopping.append(runID)
                } else if try await AssistantRun.transition(runID, from: [run.status], to: .cancelled,
                                                            set: [("finished_at", now), ("error", "the assistant was removed")], on: tx),
                          let current = try await AssistantRun.find(runID, on: tx) {
                    try await outbox.record(RunCancelled(RunDTO(current)), in: current.conversationID, at: now)
                }
            }
            try await assistant.delete(on: tx)
            return stopping
        }
        for runID in stopping { registry.cancel(runID) }
    }

    private func find(_ id: UUID) async throws -> (Assistant, User) {
        guard let assistant = try await Assistant.find(id, on: db), let user = try await User.find(id, on: db) else {
            throw AssistantError.assistantNotFound
        }
        return (assistant, user)
    }

    /// Applies the fields present in `input`, naming every bad one.
    static func apply(_ input: AssistantInput, to assistant: Assistant, mcpServers configured: [String] = [],
                      into validator: inout Validator) {
        if let provider = input.provider {
            if provider.range(of: "^[a-z][a-z0-9_]{0,31}$", options: .regularExpression) != nil { assistant.provider = provider }
            else { validator.add("provider", "invalid", "must be a provider name: a letter, then up to 31 of a-z 0-9 _") }
        }
        if let model = input.model, let valid = validator.text(model, "model", length: 1...200) { assistant.model = valid }
        if let prompt = input.systemPrompt {
            if prompt.count <= 8000 { assistant.systemPrompt = prompt }
            else { validator.add("system_prompt", "too_long", "must be at most 8000 characters") }
        }
        if let raw = input.toolCalling {
            if let value = Assistant.ToolCalling(rawValue: raw) { assistant.toolCalling = value }
            else { validator.add("tool_calling", "invalid", "must be one of \(Assistant.ToolCalling.allCases.map(\.rawValue).joined(separator: ", "))") }
        }
        if let raw = input.toolChoice {
            if let value = Assistant.ToolChoice(rawValue: raw) { assistant.toolChoice = value }
            else { validator.add("tool_choice", "invalid", "must be one of \(Assistant.ToolChoice.allCases.map(\.rawValue).joined(separator: ", "))") }
        }
        if let raw = input.busyPolicy {
            if let value = Assistant.BusyPolicy(rawValue: raw) { assistant.busyPolicy = value }
            else { validator.add("busy_policy", "invalid", "must be one of \(Assistant.BusyPolicy.allCases.map(\.rawValue).joined(separator: ", "))") }
        }
        if let httpTools = input.httpTools {
            var names: Set<String> = []
            for (index, tool) in httpTools.enumerated() {
                let field = "http_tools[\(index)]"
                if tool.name.range(of: "^[a-z][a-z0-9_]{0,63}$", options: .regularExpression) == nil {
                    validator.add(field + ".name", "invalid", "must be a letter, then up to 63 of a-z 0-9 _")
                } else if AssistantTools.builtInNames.contains(tool.name) || !names.insert(tool.name).inserted {
                    validator.add(field + ".name", "taken", "is already a tool's name")
                }
                if let url = URL(string: tool.url), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil {} else {
                    validator.add(field + ".url", "invalid", "must be an http:// or https:// URL")
                }
                if tool.description.isEmpty || tool.description.count > 1000 {
                    validator.add(field + ".description", "invalid", "must be 1-1000 characters")
                }
                if tool.parameters["type"]?.stringValue != "object" {
                    validator.add(field + ".parameters", "invalid", "must be a JSON Schema of an object ({\"type\": \"object\", …})")
                }
            }
            assistant.httpTools = httpTools
        }
        if let servers = input.mcpServers {
            let unknown = servers.filter { !configured.contains($0) }
            if unknown.isEmpty { assistant.mcpServers = Array(Set(servers)).sorted() }
            else {
                validator.add("mcp_servers", "unknown", "names MCP servers this server does not have: \(unknown.joined(separator: ", "))"
                              + (configured.isEmpty ? " (none are configured: PARLEY_MCP_SERVERS)" : " (configured: \(configured.joined(separator: ", ")))"))
            }
        }
        if let tools = input.tools {
            let unknown = tools.filter { !AssistantTools.builtInNames.contains($0) }
            if unknown.isEmpty { assistant.tools = Array(Set(tools)).sorted() }
            else { validator.add("tools", "unknown", "names no built-in tool: \(unknown.joined(separator: ", ")) (known: \(AssistantTools.builtInNames.joined(separator: ", ")))") }
        }
        if let approval = input.approvalTools {
            let known = Set(assistant.tools + assistant.httpTools.map(\.name))
            // MCP tools are named `<server>__<tool>`; the server lists its tools only when asked.
            let unknown = approval.filter { name in
                !known.contains(name) && !assistant.mcpServers.contains { name.hasPrefix($0 + "__") && name.count > $0.count + 2 }
            }
            if unknown.isEmpty { assistant.approvalTools = Array(Set(approval)).sorted() }
            else { validator.add("approval_tools", "unknown", "names tools the assistant does not have: \(unknown.joined(separator: ", "))") }
        }
        if let budget = input.dailyTokensPerConversation {
            if let value = budget, value < 1 { validator.add("daily_tokens_per_conversation", "invalid", "must be at least 1, or null for no limit") }
            else { assistant.dailyTokensPerConversation = budget }
        }
        if let budget = input.dailyTokensPerUser {
            if let value = budget, value < 1 { validator.add("daily_tokens_per_user", "invalid", "must be at least 1, or null for no limit") }
            else { assistant.dailyTokensPerUser = budget }
        }
        if let steps = input.maxSteps {
            if (1...100).contains(steps) { assistant.maxSteps = steps }
            else { validator.add("max_steps", "out_of_range", "must be in 1...100") }
        }
        if let temperature = input.temperature {
            if let value = temperature, !(0...2).contains(value) { validator.add("temperature", "out_of_range", "must be in 0...2, or null for the provider's default") }
            else { assistant.temperature = temperature }
        }
        if let maxTokens = input.maxTokens {
            if let value = maxTokens, !(1...100_000).contains(value) { validator.add("max_tokens", "out_of_range", "must be in 1...100000, or null for the provider's default") }
            else { assistant.maxTokens = maxTokens }
        }
        if let seconds = input.runTimeoutSeconds {
            if (5...3600).contains(seconds) { assistant.runTimeoutSeconds = seconds }
            else { validator.add("run_timeout_seconds", "out_of_range", "must be in 5...3600") }
        }
    }

    // MARK: Runs

    /// A run and its trace, for members of its conversation (anyone else: not found).
    func run(_ id: UUID, by caller: Caller) async throws -> RunDetailDTO {
        let run = try await visibleRun(id, to: caller)
        let steps = try await AssistantRunStep.steps(of: id, on: db)
        var dtos = steps.map(RunStepDTO.init)
        for (index, detail) in RunTrace.expand(dtos.map(\.detail)).enumerated() { dtos[index].detail = detail }
        return RunDetailDTO(run: RunDTO(run), steps: dtos)
    }

    func runs(in conversationID: UUID, before cursor: Date?, limit: Int, by caller: Caller) async throws -> Page<RunDTO> {
        guard try await Membership.find(conversationID: conversationID, userID: caller.userID, on: db) != nil else {
            throw ConversationError.conversationNotFound
        }
        let rows = try await AssistantRun.list(conversationID: conversationID, before: cursor, limit: limit + 1, on: db)
        let page = Array(rows.prefix(limit))
        return Page(items: page.map(RunDTO.init), nextCursor: rows.count > limit ? page.last.map { String($0.createdAt.timeIntervalSince1970) } : nil)
    }

    /// Approves or rejects the tool call a run waits on; the run resumes from its checkpoint.
    func decide(_ id: UUID, _ input: ApprovalInput, by caller: Caller) async throws -> RunDTO {
        var validator = Validator()
        let approved = validator.require(input.approved, "approved")
        let reason = input.reason == nil ? nil : validator.text(input.reason, "reason", length: 1...1000)
        try validator.check()
        let run = try await visibleRun(id, to: caller)
        guard run.status == .awaitingApproval, let request = run.approval else {
            throw AssistantError.conflict("This run is not waiting for an approval (it is \(run.status.rawValue)).")
        }
        guard request.approvers.contains(caller.userID.wire) else { throw AssistantError.mayNotDecide }
        let decision = ApprovalDecision(approved: approved ?? false, reason: reason, by: caller.userID.wire)
        let json = String(decoding: try EventLog.encoder.encode(decision), as: UTF8.self)
        let now = clock.now()
        let updated: AssistantRun? = try await db.writeTransaction(writes) { tx, outbox in
            try await outbox.holdOrder()
            guard let current = try await AssistantRun.transitioned(id, from: [.awaitingApproval], to: .queued, set: [("decision", json)], on: tx)
            else { return nil }
            try await AssistantRunStep.append(runID: id, kind: "approval", name: request.tool, startedAt: now, durationMS: 0,
                                              detail: ["decision": .object(["approved": .bool(decision.approved), "reason": decision.reason.map { .string($0) } ?? .null,
                                                                            "by": .string(decision.by)])], on: tx)
            try await outbox.record(RunApprovalDecided(RunDTO(current)), in: current.conversationID, at: now)
            try await AssistantDispatcher.enqueue(runID: id, round: current.approvalRound, at: now, in: outbox)
            return current
        }
        guard let updated else { throw AssistantError.conflict("Someone answered this approval request first.") }
        return RunDTO(updated)
    }

    /// Stops a run: at once when it waits; when it runs, within a second on whichever node runs it.
    func cancel(_ id: UUID, by caller: Caller) async throws -> RunDTO {
        let run = try await visibleRun(id, to: caller)
        if run.requesterID != caller.userID, !caller.isAdministrator {
            let managers = try await Membership.managers(of: run.conversationID, on: db)
            guard managers.contains(caller.userID) else { throw AssistantError.mayNotDecide }
        }
        guard run.status.isActive else { throw AssistantError.conflict("This run has already ended (\(run.status.rawValue)).") }
        let now = clock.now()
        let result: AssistantRun? = try await db.writeTransaction(writes) { tx, outbox in
            if run.status == .running {
                return try await AssistantRun.transitioned(id, from: [.running], to: .running, set: [("cancel_requested", true)], on: tx)
            }
            // Before the run's row: a send under the interrupt policy takes the two the same way.
            try await outbox.holdOrder()
            guard let current = try await AssistantRun.transitioned(id, from: [run.status], to: .cancelled,
                                                                     set: [("finished_at", now), ("error", "cancelled"), ("cancel_requested", true)], on: tx)
            else { return nil }
            try await outbox.record(RunCancelled(RunDTO(current)), in: current.conversationID, at: now)
            try await AssistantDispatcher.promoteNext(assistantID: current.assistantID, conversationID: current.conversationID,
                                                      at: now, tx: tx, outbox: outbox)
            return current
        }
        guard let result else { throw AssistantError.conflict("The run changed while cancelling it; read it again.") }
        if result.status == .running { registry.cancel(id) }
        return RunDTO(result)
    }

    private func visibleRun(_ id: UUID, to caller: Caller) async throws -> AssistantRun {
        guard let run = try await AssistantRun.find(id, on: db),
              try await Membership.find(conversationID: run.conversationID, userID: caller.userID, on: db) != nil
        else { throw AssistantError.runNotFound }
        return run
    }
}
