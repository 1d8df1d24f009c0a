import AgentGraph
import Foundation
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
