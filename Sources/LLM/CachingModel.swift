import Synchronization

/// Answers a deterministic request (temperature 0) seen before from memory, replaying the
/// reply's deltas. Only whole, successful replies are kept; the oldest go first past
/// `capacity`.
public final class CachingModel: ChatModel {
    public let base: any ChatModel
    public let capacity: Int
    private let entries = Mutex<(replies: [ChatRequest: [ChatDelta]], order: [ChatRequest], hits: Int)>(([:], [], 0))

    public init(_ base: any ChatModel, capacity: Int = 1_000) {
        self.base = base
        self.capacity = max(1, capacity)
    }

    /// Requests answered from the cache so far.
    public var hits: Int { entries.withLock { $0.hits } }

    public func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse {
        try await collect(request, model: "cache")
    }

    public func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error> {
        guard request.temperature == 0 else { return base.stream(request) }
        let cached = entries.withLock { entries -> [ChatDelta]? in
            guard let reply = entries.replies[request] else { return nil }
            entries.hits += 1
            return reply
        }
        if let cached {
            return .running { continuation in
                for delta in cached { continuation.yield(delta) }
            }
        }
        let base = self.base
        return .running { [self] continuation in
            var deltas: [ChatDelta] = []
            for try await delta in base.stream(request) {
                deltas.append(delta)
                continuation.yield(delta)
            }
            store(deltas, for: request)
        }
    }

    private func store(_ deltas: [ChatDelta], for request: ChatRequest) {
        entries.withLock { entries in
            if entries.replies.updateValue(deltas, forKey: request) == nil { entries.order.append(request) }
            while entries.order.count > capacity {
                entries.replies[entries.order.removeFirst()] = nil
            }
        }
    }
}
