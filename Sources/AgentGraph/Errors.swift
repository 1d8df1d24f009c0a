import Foundation

/// Why a run, or an operation on a thread, failed: what happened, and where (node, step,
/// thread, checkpoint namespace).
public struct GraphError: Error, CustomStringConvertible {
    public enum Kind: Sendable {
        /// The node threw; `underlying` is its error.
        case nodeFailed
        /// The node ran past its timeout and was cancelled.
        case timeout(Duration)
        /// The run took this many steps without reaching END.
        case recursionLimit(Int)
        /// Two tasks wrote one replace field in the same step.
        case conflictingWrites(field: String, nodes: [String])
        /// A node wrote a key path that is not in the state's schema.
        case undeclaredField
        /// Another run holds this thread.
        case threadBusy
        /// This run lost the thread to another writer (its lease ran out and another run took it).
        case concurrentUpdate
        /// The operation needs a checkpointer and the graph has none.
        case noCheckpointer
        /// The graph has a checkpointer, so a run needs `RunConfig.threadID`.
        case threadRequired
        case checkpointNotFound(Int64)
        /// The thread waits on an interrupt and was continued without a resume value.
        case resumeRequired
        /// A resume value was given but the thread is not interrupted, or names an unknown interrupt.
        case invalidResume(String)
        /// A node that takes a `Send` payload was scheduled without one.
        case missingPayload
        /// A router or node routed to a node it did not declare.
        case invalidRoute(String)
        /// A checkpoint could not be read back.
        case corruptCheckpoint(String)
    }

    public let kind: Kind
    public var node: String?
    public var step: Int?
    public var thread: String?
    public var namespace: String = ""
    public var underlying: (any Error)?

    public init(_ kind: Kind, node: String? = nil, step: Int? = nil, thread: String? = nil, underlying: (any Error)? = nil) {
        self.kind = kind
        self.node = node
        self.step = step
        self.thread = thread
        self.underlying = underlying
    }

    public var description: String {
        var location: [String] = []
        if let node { location.append("node '\(node)'") }
        if let step { location.append("step \(step)") }
        if let thread { location.append("thread '\(thread)'") }
        if !namespace.isEmpty { location.append("subgraph '\(namespace)'") }
        let place = location.isEmpty ? "" : " (" + location.joined(separator: ", ") + ")"
        return reason + place
    }

    public var reason: String {
        switch kind {
        case .nodeFailed:
            return "node failed: \(underlying.map { String(describing: $0) } ?? "unknown error")"
        case .timeout(let limit):
            return "node timed out after \(limit) and was cancelled"
        case .recursionLimit(let limit):
            return "recursion limit of \(limit) steps reached without reaching END; raise RunConfig.recursionLimit or check the loop's exit condition"
        case .conflictingWrites(let field, let nodes):
            return "nodes \(nodes.map { "'\($0)'" }.joined(separator: " and ")) both wrote field '\(field)' in one step; a replace field takes one write per step, so give it a reducer (such as .append) or write it from one node"
        case .undeclaredField:
            return "a node wrote a key path that is not in the state's schema; add it with .field(name, keyPath, reducer)"
        case .threadBusy:
            return "another run is in progress on this thread; wait for it to finish or interrupt it"
        case .concurrentUpdate:
            return "another run wrote to this thread while this one ran (its lease expired); this run's later steps were not saved"
        case .noCheckpointer:
            return "this needs a checkpointer: compile the graph with one"
        case .threadRequired:
            return "the graph has a checkpointer, so the run needs RunConfig.threadID"
        case .checkpointNotFound(let id):
            return "checkpoint \(id) does not exist on this thread"
        case .resumeRequired:
            return "the thread is waiting on an interrupt; resume it with a value"
        case .invalidResume(let why):
            return "cannot resume: \(why)"
        case .missingPayload:
            return "node takes a Send payload but was scheduled without one"
        case .invalidRoute(let why):
            return "invalid route: \(why)"
        case .corruptCheckpoint(let why):
            return "checkpoint could not be read: \(why)"
        }
    }
}

/// Compiling found problems; all of them are listed.
public struct GraphValidationError: Error, CustomStringConvertible {
    public let graph: String
    public let problems: [String]

    public var description: String {
        "graph '\(graph)' is invalid:\n" + problems.map { "- \($0)" }.joined(separator: "\n")
    }
}

/// Thrown by `NodeContext.interrupt` to stop the run; the runtime catches it. Do not catch
/// it in a node.
public struct NodeInterrupt: Error {
    let payloads: [JSONValue]
}

/// Raised by a checkpointer when the thread is held or its version moved.
public enum CheckpointConflict: Error, Equatable {
    /// Another run holds the thread's lease.
    case busy
    /// The thread's version is not the one this run last wrote, or its lease was taken.
    case versionMismatch
}
