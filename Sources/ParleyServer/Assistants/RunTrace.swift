import AgentGraph
import Foundation
import LLM
import NIOConcurrencyHelpers
import SQLKit

/// A run's trace steps and token usage waiting to be written: the graph's nodes add them as
/// they happen, and they are written in the transaction of the next checkpoint stored
/// (`SQLCheckpointSaver(alongside:)`), or with the run's end, so they cost no transaction of
/// their own. Checkpoints are stored while the next step runs, so a step's entries may commit
/// with the checkpoint before its own: after a crash, a step that runs again (a model call, a
/// tool that only reads) is traced, and its tokens counted, once for each time it ran.
final class RunTrace: Sendable {
    struct Step: Sendable {
        let kind: String
        let name: String
        let startedAt: Date
        let durationMS: Double
        let detail: JSONValue
    }

    private struct Pending {
        var steps: [Step] = []
        var prompt = 0, completion = 0
        var cost = 0.0
    }

    let runID: UUID
    private let pending = NIOLockedValueBox(Pending())

    // MARK: Prompts stored once

    /// A model call's prompt as traced: its key in the stored step, and its messages.
    struct Prompt: Sendable {
        let key: String
        let messages: [ChatMessage]
    }

    /// The prompt part of a model call's step `detail`. A model call sends everything the
    /// previous one sent, plus the reply and the tool results since, so storing every prompt
    /// whole made a run's trace grow with the square of its model calls. A step stores the
    /// messages it adds to the previous call's prompt (`after`, the last call traced by this
    /// execution), as `messages` with `prompt_from` (that step's `prompt_key`) and
    /// `prompt_kept` (how many of its messages come first); `expand` restores the whole list
    /// for readers. The first call of an execution (and one sharing nothing with the previous)
    /// stores its prompt whole. Updates `after` to this call.
    static func compact(_ messages: [ChatMessage], after last: inout Prompt?, render: (ChatMessage) -> JSONValue) -> [String: JSONValue] {
        let key = UUID.timeOrdered().wire
        var detail: [String: JSONValue] = ["prompt_key": .string(key)]
        var kept = 0
        if let last {
            while kept < min(last.messages.count, messages.count), last.messages[kept] == messages[kept] { kept += 1 }
            if kept > 0 {
                detail["prompt_from"] = .string(last.key)
                detail["prompt_kept"] = .integer(Int64(kept))
            }
        }
        detail["messages"] = .array(messages[kept...].map(render))
        last = Prompt(key: key, messages: messages)
        return detail
    }

    /// Stored steps' details (in position order) as readers see them: each model call's
    /// `messages` whole, without the storage keys of `compact`. A step whose earlier prompt
    /// is missing keeps its own messages and says how many came before them
    /// (`messages_omitted`).
    static func expand(_ details: [JSONValue]) -> [JSONValue] {
        var prompts: [String: [JSONValue]] = [:]
        return details.map { detail in
            guard case .object(var object) = detail, case .string(let key)? = object.removeValue(forKey: "prompt_key"),
                  case .array(var messages)? = object["messages"]
            else { return detail }
            let from = object.removeValue(forKey: "prompt_from"), kept = object.removeValue(forKey: "prompt_kept")
            if case .string(let earlier)? = from, case .integer(let count)? = kept {
                if let before = prompts[earlier], before.count >= Int(count) {
                    messages = Array(before.prefix(Int(count))) + messages
                } else {
                    object["messages_omitted"] = .integer(count)
                }
            }
            prompts[key] = messages
            object["messages"] = .array(messages)
            return .object(object)
        }
    }

    init(runID: UUID) {
        self.runID = runID
    }

    func add(_ step: Step) {
        pending.withLockedValue { $0.steps.append(step) }
    }

    func addUsage(prompt: Int, completion: Int, cost: Double) {
        pending.withLockedValue {
            $0.prompt += prompt
            $0.completion += completion
            $0.cost += cost
        }
    }

    /// Writes what is pending on `sql` (a transaction). If writing fails, it stays pending.
    func flush(on sql: any SQLDatabase) async throws {
        let taken = pending.withLockedValue { state -> Pending in
            defer { state = Pending() }
            return state
        }
        guard !taken.steps.isEmpty || taken.prompt + taken.completion > 0 else { return }
        do {
            if taken.prompt + taken.completion > 0 || taken.cost > 0 {
                try await AssistantRun.addUsage(runID, prompt: taken.prompt, completion: taken.completion, cost: taken.cost, on: sql)
            }
            for step in taken.steps {
                try await AssistantRunStep.append(runID: runID, kind: step.kind, name: step.name, startedAt: step.startedAt,
                                                  durationMS: step.durationMS, detail: step.detail, on: sql)
            }
        } catch {
            pending.withLockedValue { state in
                state.steps = taken.steps + state.steps
                state.prompt += taken.prompt
                state.completion += taken.completion
                state.cost += taken.cost
            }
            throw error
        }
    }
}
