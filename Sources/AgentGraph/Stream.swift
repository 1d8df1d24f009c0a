import Foundation

/// What a stream delivers. Combine with set syntax: `[.updates, .tokens]`.
public struct StreamMode: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// The whole state after every step.
    public static let values = StreamMode(rawValue: 1 << 0)
    /// Each node's update, as it is merged.
    public static let updates = StreamMode(rawValue: 1 << 1)
    /// Text a node writes as it goes (`context.write(token:)`), such as LLM deltas, including subgraphs'.
    public static let tokens = StreamMode(rawValue: 1 << 2)
    /// Anything a node emits with `context.emit(_:)`.
    public static let custom = StreamMode(rawValue: 1 << 3)
    /// Task starts and finishes with timings, checkpoints written.
    public static let debug = StreamMode(rawValue: 1 << 4)

    public static let all: StreamMode = [.values, .updates, .tokens, .custom, .debug]
}

/// One event of a streamed run. The last event is always `.finished`.
public enum GraphEvent<S: GraphState>: Sendable {
    case values(S, step: Int)
    case update(NodeUpdate<S>)
    case token(String, node: String, namespace: String)
    case custom(JSONValue, node: String, namespace: String)
    case debug(DebugEvent)
    case finished(RunResult<S>)
}

/// A node's update as streamed in `.updates` mode.
public struct NodeUpdate<S: GraphState>: Sendable {
    public let node: String
    public let taskID: String
    public let step: Int
    public let update: StateUpdate<S>
}

/// Runtime internals for `.debug` mode.
public enum DebugEvent: Sendable {
    case taskStarted(node: String, taskID: String, step: Int, namespace: String, attempt: Int)
    case taskFinished(node: String, taskID: String, step: Int, namespace: String, duration: Duration, outcome: String)
    case checkpoint(id: Int64, step: Int, namespace: String, source: String)
}

/// Untyped events a node can produce anywhere in a run, including inside subgraphs.
enum RunChunk: Sendable {
    case token(String, node: String, namespace: String)
    case custom(JSONValue, node: String, namespace: String)
    case debug(DebugEvent)
}

/// Where a run's untyped events go; shared with subgraphs.
struct ChunkSink: Sendable {
    let modes: StreamMode
    let send: (@Sendable (RunChunk) -> Void)?

    static let none = ChunkSink(modes: [], send: nil)

    func wants(_ mode: StreamMode) -> Bool { send != nil && modes.contains(mode) }
}
