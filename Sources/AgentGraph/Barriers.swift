import Foundation

/// Where each waiting edge stands: which of its sources have finished since its target last
/// ran (LangGraph's join channel, `NamedBarrierValue`). It belongs to the thread like the
/// state does: every checkpoint holds it whole, and a run, resume, replay or fork starts
/// from the checkpoint's.
struct Barriers: Sendable, Equatable {
    /// Per waiting edge of the definition (same numbering), the sources seen, as node numbers.
    private(set) var seen: [Set<Int>]

    init(count: Int) {
        seen = [Set<Int>](repeating: [], count: count)
    }

    /// Reads a checkpoint's barriers back. A record that matches no waiting edge of this
    /// graph (the graph changed since) is dropped, as are sources the edge no longer has.
    init<S: GraphState>(_ records: [BarrierRecord]?, definition: GraphDefinition<S>) {
        self.init(count: definition.waiting.count)
        for record in records ?? [] {
            guard let target = definition.node(record.to) else { continue }
            let sources = Set(record.from.compactMap { definition.node($0) })
            guard sources.count == record.from.count,
                  let edge = definition.waiting.indices.first(where: {
                      definition.waiting[$0].target == target && Set(definition.waiting[$0].sources) == sources
                  })
            else { continue }
            seen[edge] = Set(record.done.compactMap { definition.node($0) }).intersection(sources)
        }
    }

    var isEmpty: Bool { seen.allSatisfy(\.isEmpty) }

    /// Records that `node` finished. Each waiting edge that now has all its sources schedules
    /// its target and starts waiting afresh.
    mutating func finished<S: GraphState>(_ node: Int, definition: GraphDefinition<S>, into targets: inout Targets) {
        guard node >= 0, node < definition.feeds.count else { return }
        for edge in definition.feeds[node] {
            seen[edge].insert(node)
            if seen[edge].count == definition.waiting[edge].sources.count {
                seen[edge] = []
                targets.add(definition.waiting[edge].target)
            }
        }
    }

    /// The barriers as a checkpoint stores them: only edges with a source seen, each named by
    /// its target and its sources (in the order they were given); nil when none waits.
    func records<S: GraphState>(definition: GraphDefinition<S>) -> [BarrierRecord]? {
        guard !isEmpty else { return nil }
        var records: [BarrierRecord] = []
        for (position, edge) in definition.waiting.enumerated() where !seen[position].isEmpty {
            records.append(BarrierRecord(
                to: definition.names[edge.target],
                from: edge.sources.map { definition.names[$0] },
                done: edge.sources.filter { seen[position].contains($0) }.map { definition.names[$0] }
            ))
        }
        return records
    }
}
