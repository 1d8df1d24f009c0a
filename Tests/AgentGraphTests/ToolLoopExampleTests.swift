import AgentGraph
import Foundation
import Synchronization
import Testing

// The example of docs/agentgraph.md, kept here so it compiles and works.

struct ToolCall: Codable, Sendable, Equatable {
    var id: String
    var name: String
    var arguments: [String: String]
}

struct Message: Codable, Sendable, Identifiable, Equatable {
    var id: String
    var role: String            // "user", "assistant" or "tool"
    var text: String
    var toolCalls: [ToolCall] = []
    var toolCallID: String?
}

struct AgentState: GraphState {
    var messages: [Message] = []
    var toolRuns = 0

    static let schema: StateSchema<AgentState> = [
        .field("messages", \.messages, .mergeByID()),
        .field("toolRuns", \.toolRuns, .sum),
    ]
}

/// What the approval interrupt hands to a person, and what they answer.
struct ApprovalRequest: Codable, Sendable {
    var tool: String
    var arguments: [String: String]
}

struct Approval: Codable, Sendable {
    var approved: Bool
    var note: String?
}

/// The model and the tools come in from outside: a chat-model client in production, a
/// scripted one in tests.
struct Assistant: Sendable {
    var model: @Sendable ([Message], NodeContext) async throws -> Message
    var runTool: @Sendable (ToolCall) async throws -> String
    var needsApproval: Set<String>

    func graph(checkpointer: any CheckpointSaver) throws -> CompiledGraph<AgentState> {
        var graph = StateGraph(AgentState.self, defaults: NodePolicy(retry: RetryPolicy(maxAttempts: 3)))

        graph.addNode("agent", policy: NodePolicy(timeout: .seconds(60))) { state, context in
            let reply = try await model(state.messages, context)
            return .update(\.messages, [reply])
        }

        graph.addNode("tools") { state, context in
            guard let request = state.messages.last else { return StateUpdate() }
            var results: [Message] = []
            for call in request.toolCalls {
                if needsApproval.contains(call.name) {
                    let answer = try context.interrupt(
                        ApprovalRequest(tool: call.name, arguments: call.arguments), resumeAs: Approval.self
                    )
                    guard answer.approved else {
                        results.append(Message(id: "result-\(call.id)", role: "tool",
                                               text: "The user declined: \(answer.note ?? "no reason given")", toolCallID: call.id))
                        continue
                    }
                }
                // Runs once per call, even when the node reruns on resume.
                let output = try await context.task("tool:\(call.id)") { try await runTool(call) }
                results.append(Message(id: "result-\(call.id)", role: "tool", text: output, toolCallID: call.id))
            }
            return .update(\.messages, results).and(\.toolRuns, results.count)
        }

        graph.addEdge(START, "agent")
        graph.addConditionalEdges("agent", to: ["tools", END]) { state in
            state.messages.last?.toolCalls.isEmpty == false ? ["tools"] : [.end]
        }
        graph.addEdge("tools", "agent")
        return try graph.compile(checkpointer: checkpointer, name: "assistant")
    }
}

@Suite("Tool-calling loop with approval (docs/agentgraph.md)")
struct ToolLoopExampleTests {
    /// A scripted model: first asks for a refund tool, then answers with its result.
    static let scripted: @Sendable ([Message], NodeContext) async throws -> Message = { messages, context in
        if let result = messages.last, result.role == "tool" {
            for word in ["Done: ", result.text] { context.write(token: word) }
            return Message(id: "answer-\(messages.count)", role: "assistant", text: "Done: \(result.text)")
        }
        return Message(id: "call-\(messages.count)", role: "assistant", text: "",
                       toolCalls: [ToolCall(id: "c1", name: "refund", arguments: ["order": "A-17", "amount": "30"])])
    }

    @Test("the run stops for approval, the refund runs once after it, and the answer streams")
    func approvalLoop() async throws {
        let refunds = Mutex(0)
        let assistant = Assistant(
            model: Self.scripted,
            runTool: { call in
                refunds.withLock { $0 += 1 }
                return "refunded \(call.arguments["amount"] ?? "?") on \(call.arguments["order"] ?? "?")"
            },
            needsApproval: ["refund"]
        )
        let graph = try assistant.graph(checkpointer: InMemorySaver())
        let config = RunConfig(threadID: "conversation-42")

        let question = Message(id: "m1", role: "user", text: "Please refund order A-17")
        let first = try await graph.invoke(.update(\.messages, [question]), config: config)
        #expect(first.status == .interrupted)
        let request = try #require(try first.interrupts.first?.payload?.decode(as: ApprovalRequest.self))
        #expect(request.tool == "refund")
        #expect(request.arguments["order"] == "A-17")
        #expect(refunds.withLock { $0 } == 0)

        var tokens: [String] = []
        var final: RunResult<AgentState>?
        for try await event in graph.stream(try .resume(Approval(approved: true)), config: config, modes: [.tokens]) {
            switch event {
            case .token(let text, _, _): tokens.append(text)
            case .finished(let result): final = result
            default: break
            }
        }
        #expect(tokens == ["Done: ", "refunded 30 on A-17"])
        #expect(final?.state.messages.map(\.role) == ["user", "assistant", "tool", "assistant"])
        #expect(final?.state.toolRuns == 1)
        #expect(refunds.withLock { $0 } == 1)
    }

    @Test("a declined call reaches the model as a tool message and nothing runs")
    func declined() async throws {
        let refunds = Mutex(0)
        let assistant = Assistant(
            model: Self.scripted, runTool: { _ in refunds.withLock { $0 += 1 }; return "refunded" }, needsApproval: ["refund"]
        )
        let graph = try assistant.graph(checkpointer: InMemorySaver())
        let config = RunConfig(threadID: "conversation-43")
        _ = try await graph.invoke(.update(\.messages, [Message(id: "m1", role: "user", text: "refund A-17")]), config: config)
        let done = try await graph.invoke(try .resume(Approval(approved: false, note: "over the limit")), config: config)
        #expect(done.state.messages.last?.text == "Done: The user declined: over the limit")
        #expect(refunds.withLock { $0 } == 0)
    }
}
