import AgentGraph
import Foundation
import LLM

/// A run's state: the model's conversation (the prompt, its replies, tool results), one
/// turn per id so a step that runs again after a crash replaces its turn instead of adding one.
struct AssistantState: GraphState {
    var turns: [Turn] = []

    static let schema: StateSchema<AssistantState> = [
        .field("turns", \.turns, .mergeByID()),
    ]

    struct Turn: Codable, Sendable, Identifiable, Equatable {
        var id: String
        var message: ChatMessage
    }

    /// The text of the model's last reply.
    var answer: String? {
        turns.last(where: { $0.message.role == .assistant })?.message.content
    }
}

/// The tool-calling agent graph every assistant runs: `model` asks the model (streaming its
/// text), `tools` runs the calls it made (stopping for approval where the assistant says a
/// tool needs it) and loops back to `model`, until the model answers without calling tools.
struct AssistantGraph: Sendable {
    /// Asks the model with the turns so far; returns its reply (the node streams and traces).
    var callModel: @Sendable ([ChatMessage], NodeContext) async throws -> ChatMessage
    /// Runs one tool call; returns the text the model reads (failures included, as text).
    var runTool: @Sendable (ToolCall, String, NodeContext) async throws -> String
    var needsApproval: Set<String>
    /// Tools whose calls only read: they run again on a resume instead of being stored as
    /// tasks, and do not wait for the run's earlier checkpoints to be stored.
    var readOnly: Set<String> = []
    /// Who may answer an approval request.
    var approvers: [String]

    func compile(checkpointer: any CheckpointSaver, store: any GraphStore) throws -> CompiledGraph<AssistantState> {
        var graph = StateGraph(AssistantState.self)
        let callModel = self.callModel, runTool = self.runTool, needsApproval = self.needsApproval, approvers = self.approvers
        let readOnly = self.readOnly

        // A reply that cannot be used (malformed JSON from a small model, a cut tool call) is
        // asked for once more; other failures are the model clients' to retry.
        let unusable = RetryPolicy(maxAttempts: 2, initialInterval: .milliseconds(50), jitter: false) { error in
            if case .invalidOutput = error as? LLMError { return true }
            return false
        }
        graph.addNode("model", policy: NodePolicy(retry: unusable)) { state, context in
            let reply = try await callModel(state.turns.map(\.message), context)
            return .update(\.turns, [AssistantState.Turn(id: "model-\(context.step)", message: reply)])
        }

        graph.addNode("tools") { state, context in
            guard let request = state.turns.last?.message, request.role == .assistant else { return StateUpdate() }
            var results: [AssistantState.Turn] = []
            for (index, call) in request.toolCalls.enumerated() {
                let callID = call.id.isEmpty ? "call-\(context.step)-\(index)" : call.id
                if needsApproval.contains(call.name) {
                    // Stops the run the first time; on resume returns the person's answer.
                    let decision = try context.interrupt(
                        ApprovalRequest(callID: callID, tool: call.name, arguments: call.arguments, approvers: approvers),
                        resumeAs: ApprovalDecision.self)
                    guard decision.approved else {
                        let reason = decision.reason.map { ": \($0)" } ?? " (no reason given)"
                        results.append(.init(id: "result-\(callID)",
                                             message: .tool("The person declined this call\(reason). Do not try it again.", callID: callID)))
                        continue
                    }
                }
                // A call that changes things is stored in the checkpoint: a resume does not make it again.
                let output = readOnly.contains(call.name) && !needsApproval.contains(call.name)
                    ? try await runTool(call, callID, context)
                    : try await context.task("tool:\(callID)") { try await runTool(call, callID, context) }
                results.append(.init(id: "result-\(callID)", message: .tool(output, callID: callID)))
            }
            return .update(\.turns, results)
        }

        graph.addEdge(START, "model")
        graph.addConditionalEdges("model", to: ["tools", END]) { state in
            state.turns.last?.message.toolCalls.isEmpty == false ? ["tools"] : [.end]
        }
        graph.addEdge("tools", "model")
        return try graph.compile(checkpointer: checkpointer, store: store, name: "assistant")
    }
}
