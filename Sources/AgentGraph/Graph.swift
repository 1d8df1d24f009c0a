import Foundation

/// The virtual node a run starts from.
public let START = "__start__"
/// The virtual node a run ends at.
public let END = "__end__"

/// Where a router or node sends control next: a node name, or a node with a payload of its
/// own (`Route.send`, LangGraph's `Send`), which is how one step fans out to N branches.
public struct Route: Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let node: String
    let payload: Payload?

    public init(_ node: String) {
        self.node = node
        self.payload = nil
    }

    public init(stringLiteral node: String) { self.init(node) }

    init(node: String, payload: Payload?) {
        self.node = node
        self.payload = payload
    }

    public static let end = Route(END)

    /// Runs `node` once with `payload` as its input (map); the updates it returns are merged
    /// by the state's reducers (reduce). Several sends to one node in a step run concurrently.
    public static func send<P: Codable & Sendable>(_ node: String, _ payload: P) -> Route {
        Route(node: node, payload: Payload(value: payload))
    }

    public var description: String { payload == nil ? node : "send(\(node))" }
}

/// A `Send` payload: kept as the value while a run is in memory, as JSON once checkpointed.
struct Payload: Sendable {
    let value: (any Encodable & Sendable)?
    let json: JSONValue?

    init(value: any Encodable & Sendable) {
        self.value = value
        self.json = nil
    }

    init(json: JSONValue) {
        self.value = nil
        self.json = json
    }

    func decode<P: Decodable>(as type: P.Type) throws -> P {
        if let value = value as? P { return value }
        return try encoded().decode(as: P.self)
    }

    func encoded() throws -> JSONValue {
        if let json { return json }
        guard let value else { return .null }
        return try JSONValue(encoding: value)
    }
}

/// What a node does: reads the state (and its context) and returns a partial update.
public typealias NodeAction<S: GraphState> = @Sendable (S, NodeContext) async throws -> StateUpdate<S>

/// Retries a failing node with exponential backoff and jitter.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var initialInterval: Duration
    public var backoffFactor: Double
    public var maxInterval: Duration
    /// Adds up to the full computed delay at random, so many retrying runs do not align.
    public var jitter: Bool
    /// Which errors are worth retrying. By default every error but cancellation,
    /// interrupts and graph errors other than timeouts (a bad update will not fix itself).
    public var retryOn: @Sendable (any Error) -> Bool

    public init(
        maxAttempts: Int = 3,
        initialInterval: Duration = .milliseconds(500),
        backoffFactor: Double = 2,
        maxInterval: Duration = .seconds(128),
        jitter: Bool = true,
        retryOn: @escaping @Sendable (any Error) -> Bool = RetryPolicy.defaultRetryOn
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialInterval = initialInterval
        self.backoffFactor = backoffFactor
        self.maxInterval = maxInterval
        self.jitter = jitter
        self.retryOn = retryOn
    }

    public static let defaultRetryOn: @Sendable (any Error) -> Bool = { error in
        if error is CancellationError || error is NodeInterrupt { return false }
        if let error = error as? GraphError, case .timeout = error.kind { return true }
        return !(error is GraphError)
    }

    /// The delay before attempt `attempt + 1` (attempts count from 1).
    func delay(after attempt: Int, random: Double) -> Duration {
        let base = initialInterval * pow(backoffFactor, Double(attempt - 1))
        let capped = min(base, maxInterval)
        return jitter ? capped + capped * random : capped
    }
}

/// Caches a node's update by its input (the state and any `Send` payload), for `ttl`.
public struct CachePolicy: Sendable {
    public var ttl: Duration?
    public init(ttl: Duration? = nil) { self.ttl = ttl }
}

/// Per-node policies; `StateGraph(defaults:)` gives graph-wide defaults, which a node's own
/// policy overrides field by field.
public struct NodePolicy: Sendable {
    public var retry: RetryPolicy?
    /// The node is cancelled after this long and fails with `GraphError.Kind.timeout`.
    public var timeout: Duration?
    /// A node that runs instead when this one finally fails; it sees the failure in
    /// `context.failure` and routing continues from it.
    public var fallback: String?
    public var cache: CachePolicy?

    public init(retry: RetryPolicy? = nil, timeout: Duration? = nil, fallback: String? = nil, cache: CachePolicy? = nil) {
        self.retry = retry
        self.timeout = timeout
        self.fallback = fallback
        self.cache = cache
    }

    func overriding(_ defaults: NodePolicy) -> NodePolicy {
        NodePolicy(
            retry: retry ?? defaults.retry,
            timeout: timeout ?? defaults.timeout,
            fallback: fallback ?? defaults.fallback,
            cache: cache ?? defaults.cache
        )
    }
}

struct NodeSpec<S: GraphState>: Sendable {
    let name: String
    let policy: NodePolicy?
    let destinations: [String]
    let takesPayload: Bool
    let action: @Sendable (S, Payload?, NodeContext) async throws -> StateUpdate<S>
}

struct ConditionalEdge<S: GraphState>: Sendable {
    let destinations: [String]
    let router: @Sendable (S) async throws -> [Route]
}

/// A waiting edge as the runner walks it: `target` runs once every one of `sources` has
/// finished since it last ran. Node numbers, as in `GraphDefinition`.
struct WaitingEdge: Sendable {
    let sources: [Int]
    let target: Int
}

/// Builds a graph: nodes, edges and routers. `compile()` validates it and gives a
/// `CompiledGraph` that runs.
public struct StateGraph<S: GraphState>: Sendable {
    var nodes: [NodeSpec<S>] = []
    var edges: [(from: String, to: String)] = []
    var waiting: [(from: [String], to: String)] = []
    var conditional: [(from: String, edge: ConditionalEdge<S>)] = []
    var defaults: NodePolicy

    public init(_ type: S.Type = S.self, defaults: NodePolicy = NodePolicy()) {
        self.defaults = defaults
    }

    /// Adds a node. `destinations` lists where the node may route by itself with
    /// `StateUpdate.goto`, so compile can check them.
    public mutating func addNode(
        _ name: String, policy: NodePolicy? = nil, destinations: [String] = [], _ action: @escaping NodeAction<S>
    ) {
        nodes.append(NodeSpec(
            name: name, policy: policy, destinations: destinations, takesPayload: false,
            action: { state, _, context in try await action(state, context) }
        ))
    }

    /// Adds a node that is reached by `Route.send(name, payload)` and receives the payload.
    public mutating func addNode<P: Codable & Sendable>(
        _ name: String, payload: P.Type, policy: NodePolicy? = nil, destinations: [String] = [],
        _ action: @escaping @Sendable (P, S, NodeContext) async throws -> StateUpdate<S>
    ) {
        nodes.append(NodeSpec(
            name: name, policy: policy, destinations: destinations, takesPayload: true,
            action: { state, payload, context in
                guard let payload else {
                    throw GraphError(.missingPayload, node: name, step: context.step, thread: context.config.threadID)
                }
                return try await action(try payload.decode(as: P.self), state, context)
            }
        ))
    }

    /// Adds a compiled graph as a node. It runs with its own checkpoint namespace on the
    /// parent's thread; its interrupts stop the parent, and resuming the parent resumes it.
    public mutating func addSubgraph<C: GraphState>(
        _ name: String, _ graph: CompiledGraph<C>, policy: NodePolicy? = nil,
        input: @escaping @Sendable (S) -> StateUpdate<C>,
        output: @escaping @Sendable (C) -> StateUpdate<S>
    ) {
        nodes.append(NodeSpec(
            name: name, policy: policy, destinations: [], takesPayload: false,
            action: { state, _, context in
                let childState = try await graph.runAsSubgraph(input: input(state), parent: context)
                return output(childState)
            }
        ))
    }

    /// Adds an edge: `to` runs in the step after `from` finishes (each time it finishes).
    public mutating func addEdge(_ from: String, _ to: String) {
        edges.append((from, to))
    }

    /// Adds a waiting edge (LangGraph's `add_edge([a, b], c)`): `to` runs once, in the step
    /// after the last of `from` finishes, however many steps apart the sources finish. Which
    /// sources have finished since `to` last ran is kept in the checkpoint, so an interrupt
    /// or a crash in between does not lose it; once `to` is scheduled the edge starts waiting
    /// afresh, so a loop can pass through it again. A source counts as finished whenever it
    /// runs to completion, however it was reached (an edge, a router, a `goto`).
    ///
    /// A one-element list is a plain edge. Sources must be distinct nodes; START and END
    /// cannot be sources, and END cannot be the target (compiling reports these).
    public mutating func addEdge(_ from: [String], _ to: String) {
        if from.count == 1 {
            edges.append((from[0], to))
        } else {
            waiting.append((from, to))
        }
    }

    /// Adds a router after `from`. It runs on the state after `from`'s step and returns the
    /// next nodes (one or more, or `Route.send` payloads). `destinations` lists every node it
    /// may return, so compile can check reachability.
    public mutating func addConditionalEdges(
        _ from: String, to destinations: [String], _ router: @escaping @Sendable (S) async throws -> [Route]
    ) {
        conditional.append((from, ConditionalEdge(destinations: destinations, router: router)))
    }

    /// Validates the graph, listing every problem at once.
    public func compile(
        checkpointer: (any CheckpointSaver)? = nil,
        store: (any GraphStore)? = nil,
        cache: (any NodeCache)? = nil,
        interruptBefore: [String] = [],
        interruptAfter: [String] = [],
        name: String = "graph"
    ) throws(GraphValidationError) -> CompiledGraph<S> {
        let problems = validate(interruptBefore: interruptBefore, interruptAfter: interruptAfter)
        guard problems.isEmpty else { throw GraphValidationError(graph: name, problems: problems) }
        return CompiledGraph(
            definition: GraphDefinition(self, interruptBefore: Set(interruptBefore), interruptAfter: Set(interruptAfter)),
            checkpointer: checkpointer, store: store,
            cache: cache ?? InMemoryNodeCache(), name: name
        )
    }

    func validate(interruptBefore: [String], interruptAfter: [String]) -> [String] {
        var problems = S.schema.problems
        var names: [String] = []
        var known: Set<String> = []
        for node in nodes {
            if node.name == START || node.name == END || node.name.isEmpty {
                problems.append("'\(node.name)' is reserved and cannot name a node")
            } else if !known.insert(node.name).inserted {
                problems.append("node '\(node.name)' is added twice")
            } else {
                names.append(node.name)
            }
        }
        func exists(_ name: String) -> Bool { known.contains(name) }

        var successors: [String: [String]] = [:]
        for edge in edges {
            if edge.from == END { problems.append("an edge leaves END (to '\(edge.to)')") }
            if edge.to == START { problems.append("an edge enters START (from '\(edge.from)')") }
            if edge.from != START && edge.from != END && !exists(edge.from) {
                problems.append("edge from unknown node '\(edge.from)' (to '\(edge.to)')")
            }
            if edge.to != END && edge.to != START && !exists(edge.to) {
                problems.append("edge to unknown node '\(edge.to)' (from '\(edge.from)')")
            }
            if let target = nodes.first(where: { $0.name == edge.to }), target.takesPayload {
                problems.append("node '\(edge.to)' takes a Send payload; reach it with Route.send, not an edge from '\(edge.from)'")
            }
            successors[edge.from, default: []].append(edge.to)
        }
        for edge in waiting {
            let sources = edge.from.map { "'\($0)'" }.joined(separator: ", ")
            if edge.from.isEmpty {
                problems.append("waiting edge to '\(edge.to)' has no sources: list the nodes it waits for")
            }
            if edge.to == END {
                problems.append("waiting edge from \(sources) ends at END, which does not run: give each source its own edge to END")
            } else if edge.to == START {
                problems.append("a waiting edge enters START (from \(sources))")
            } else if !exists(edge.to) {
                problems.append("waiting edge to unknown node '\(edge.to)' (from \(sources))")
            } else if let target = nodes.first(where: { $0.name == edge.to }), target.takesPayload {
                problems.append("node '\(edge.to)' takes a Send payload; reach it with Route.send, not a waiting edge from \(sources)")
            }
            var listed: Set<String> = []
            for from in edge.from {
                if from == END {
                    problems.append("a waiting edge leaves END (to '\(edge.to)')")
                } else if from == START {
                    problems.append("waiting edge to '\(edge.to)' waits on START, which is not a node: use a plain edge from START")
                } else if !exists(from) {
                    problems.append("waiting edge from unknown node '\(from)' (to '\(edge.to)')")
                } else if !listed.insert(from).inserted {
                    problems.append("waiting edge to '\(edge.to)' lists '\(from)' twice")
                } else {
                    successors[from, default: []].append(edge.to)
                }
            }
        }
        for (from, edge) in conditional {
            if from != START && !exists(from) { problems.append("conditional edges from unknown node '\(from)'") }
            if edge.destinations.isEmpty { problems.append("conditional edges from '\(from)' declare no destinations") }
            for to in edge.destinations where to != END && !exists(to) {
                problems.append("conditional edge from '\(from)' to unknown node '\(to)'")
            }
            successors[from, default: []].append(contentsOf: edge.destinations)
        }
        for node in nodes {
            for to in node.destinations where to != END && !exists(to) {
                problems.append("node '\(node.name)' routes to unknown node '\(to)'")
            }
            successors[node.name, default: []].append(contentsOf: node.destinations)
            if let fallback = node.policy?.overriding(defaults).fallback {
                if !exists(fallback) {
                    problems.append("node '\(node.name)' falls back to unknown node '\(fallback)'")
                } else if fallback != node.name {
                    successors[node.name, default: []].append(fallback)
                }
            }
        }
        for name in interruptBefore + interruptAfter where !exists(name) {
            problems.append("breakpoint on unknown node '\(name)'")
        }

        if successors[START, default: []].isEmpty {
            problems.append("no entry: add an edge from START to the first node")
        }
        let reachable = Self.reach(from: [START], successors)
        for name in names where !reachable.contains(name) {
            problems.append("node '\(name)' is not reachable from START")
        }
        var predecessors: [String: [String]] = [:]
        for (from, targets) in successors { for to in targets { predecessors[to, default: []].append(from) } }
        let reachesEnd = Self.reach(from: [END], predecessors)
        for name in names {
            if successors[name, default: []].isEmpty {
                problems.append("node '\(name)' has no way out: add an edge from it (to END or another node)")
            } else if !reachesEnd.contains(name) {
                problems.append("node '\(name)' has no path to END")
            }
        }
        return problems
    }

    private static func reach(from roots: [String], _ links: [String: [String]]) -> Set<String> {
        var seen = Set(roots)
        var stack = roots
        while let next = stack.popLast() {
            for to in links[next, default: []] where seen.insert(to).inserted { stack.append(to) }
        }
        return seen
    }
}

/// The compiled, indexed form of a graph that the runner walks. Nodes are numbered in the
/// order they were added (ties in a step are broken by it); START is number `count`, END -1.
final class GraphDefinition<S: GraphState>: Sendable {
    let specs: [NodeSpec<S>]
    let names: [String]
    /// Whether each node (and START) has routers, so routing can skip the async path.
    let hasRouters: [Bool]
    let index: [String: Int]
    /// Static successors per node (and START), END as -1.
    let successors: [[Int]]
    let routers: [[ConditionalEdge<S>]]
    /// Waiting edges, each once (the same sources and target added twice are one edge).
    let waiting: [WaitingEdge]
    /// Per node (and START), the waiting edges it is a source of: numbers into `waiting`.
    let feeds: [[Int]]
    let policies: [NodePolicy]
    let interruptBefore: Set<String>
    let interruptAfter: Set<String>

    var count: Int { specs.count }
    var start: Int { specs.count }

    init(_ graph: StateGraph<S>, interruptBefore: Set<String>, interruptAfter: Set<String>) {
        specs = graph.nodes
        names = graph.nodes.map(\.name)
        var index: [String: Int] = [:]
        for (position, node) in graph.nodes.enumerated() { index[node.name] = position }
        index[START] = graph.nodes.count
        self.index = index
        var successors = [[Int]](repeating: [], count: graph.nodes.count + 1)
        for edge in graph.edges {
            guard let from = index[edge.from] else { continue }
            successors[from].append(edge.to == END ? -1 : index[edge.to] ?? -1)
        }
        self.successors = successors
        var routers = [[ConditionalEdge<S>]](repeating: [], count: graph.nodes.count + 1)
        for (from, edge) in graph.conditional {
            if let from = index[from] { routers[from].append(edge) }
        }
        self.routers = routers
        var waiting: [WaitingEdge] = []
        var feeds = [[Int]](repeating: [], count: graph.nodes.count + 1)
        for edge in graph.waiting {
            guard let target = index[edge.to], target < graph.nodes.count else { continue }
            let sources = edge.from.compactMap { name in index[name].flatMap { $0 < graph.nodes.count ? $0 : nil } }
            guard sources.count == edge.from.count, sources.count > 1, Set(sources).count == sources.count else { continue }
            let candidate = WaitingEdge(sources: sources, target: target)
            if waiting.contains(where: { $0.target == target && Set($0.sources) == Set(sources) }) { continue }
            for source in sources { feeds[source].append(waiting.count) }
            waiting.append(candidate)
        }
        self.waiting = waiting
        self.feeds = feeds
        hasRouters = routers.map { !$0.isEmpty }
        policies = graph.nodes.map { $0.policy?.overriding(graph.defaults) ?? graph.defaults }
        self.interruptBefore = interruptBefore
        self.interruptAfter = interruptAfter
    }

    func node(_ name: String) -> Int? {
        guard let position = index[name], position < specs.count else { return nil }
        return position
    }
}
