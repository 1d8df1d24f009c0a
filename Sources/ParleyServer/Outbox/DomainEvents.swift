import Fluent
import Logging
import NIOConcurrencyHelpers

/// The in-process seam where features meet: after a write transaction commits on this node,
/// the events it recorded go to every subscriber, in commit order, each with its log id.
///
/// A subscriber iterates its `AsyncStream` at its own pace. Each has a bounded buffer; when
/// it falls that far behind, later events are dropped for it and, once there is room again,
/// it gets one `.missed(after:)` naming the last event it was given: a subscriber that must
/// not miss one then reads the log after that id (`EventLog.events(after:)`). Events
/// committed by other nodes are not published here; such a subscriber follows the log for
/// them (or lets the job queue carry the work, enqueued in the same transaction).
final class DomainEvents: Sendable {
    enum Delivery: Sendable, Equatable {
        case event(CommittedEvent)
        /// Events after this id (nil: from the start) were dropped for this subscriber.
        case missed(after: Int?)
    }

    private final class Subscriber: Sendable {
        let name: String
        let continuation: AsyncStream<Delivery>.Continuation
        /// The last event handed to the stream, and whether some were dropped since.
        let state = NIOLockedValueBox<(last: Int?, dropping: Bool)>((nil, false))

        init(name: String, continuation: AsyncStream<Delivery>.Continuation) {
            self.name = name
            self.continuation = continuation
        }
    }

    private let subscribers = NIOLockedValueBox<[Subscriber]>([])
    private let logger: Logger
    /// The newest events published here, with consecutive ids, when `recentCapacity` > 0.
    private let recent = NIOLockedValueBox<[CommittedEvent]>([])
    private let recentCapacity: Int

    /// `recentCapacity`: how many of the newest events to keep for `events(after:limit:on:)`.
    /// Only where every commit to the log passes through this node's write gate in id order
    /// (one SQLite file served by one process); 0 elsewhere, where other writers' events
    /// would sit between this node's.
    init(logger: Logger, recentCapacity: Int = 0) {
        self.logger = logger
        self.recentCapacity = max(0, recentCapacity)
    }

    /// Up to `limit` events after `id`, oldest first, as `EventLog.events(after:limit:on:)`
    /// returns them. Read from memory when this node published the event just after `id` and
    /// still holds it (what the log's followers read after each of this node's commits: the
    /// events it just published, so no statement and no decoding of rows); from the log
    /// otherwise. From memory, the answer ends at the newest event published here; one
    /// committed after it is published after it, and wakes its readers again.
    ///
    /// `woken`: the reader runs because this node published events it wants (not on a poll).
    /// Then a reader already at the newest event held gets an empty answer from memory instead
    /// of a log read that would find nothing: a writer in another process (a `parley` command)
    /// that committed after it is found by the next poll, or by the next commit here (whose
    /// id then does not follow the held ones, so readers go to the log).
    func events(after id: Int, limit: Int = 500, on db: any Database, woken: Bool = false) async throws -> [CommittedEvent] {
        if let held = recentEvents(after: id, limit: limit, emptyAtEnd: woken) { return held }
        return try await EventLog.events(after: id, limit: limit, on: db)
    }

    /// The held events after `id`, or nil when the one just after it is not held (with
    /// `emptyAtEnd`, an empty list when `id` is the newest held).
    func recentEvents(after id: Int, limit: Int, emptyAtEnd: Bool = false) -> [CommittedEvent]? {
        guard recentCapacity > 0 else { return nil }
        return recent.withLockedValue { held -> [CommittedEvent]? in
            guard let first = held.first?.id else { return nil }
            let newest = first + held.count - 1
            if emptyAtEnd, id == newest { return [] }
            guard id + 1 >= first, id + 1 <= newest else { return nil }
            let start = id + 1 - first
            return Array(held[start..<min(held.count, start + limit)])
        }
    }

    private func hold(_ events: [CommittedEvent]) {
        guard recentCapacity > 0 else { return }
        recent.withLockedValue { held in
            for event in events {
                // A gap (an id this node did not publish) starts the run again.
                if let last = held.last?.id, event.id != last + 1 { held.removeAll(keepingCapacity: true) }
                held.append(event)
            }
            // Trimmed in halves, so the copy is paid once per `recentCapacity` events.
            if held.count > 2 * recentCapacity { held.removeFirst(held.count - recentCapacity) }
        }
    }

    /// A stream of this node's committed events, from now on. `name` appears in logs.
    func subscribe(_ name: String, bufferSize: Int = 10_000) -> AsyncStream<Delivery> {
        let (stream, continuation) = AsyncStream<Delivery>.makeStream(bufferingPolicy: .bufferingOldest(bufferSize))
        let subscriber = Subscriber(name: name, continuation: continuation)
        subscribers.withLockedValue { $0.append(subscriber) }
        continuation.onTermination = { [weak self] _ in
            self?.subscribers.withLockedValue { $0.removeAll { $0 === subscriber } }
        }
        return stream
    }

    /// Hands committed events to every subscriber (the write gate calls this after a commit).
    func publish(_ events: [CommittedEvent]) {
        guard !events.isEmpty else { return }
        // Held before any subscriber is woken, so what a woken follower reads is here.
        hold(events)
        for subscriber in subscribers.withLockedValue({ $0 }) {
            subscriber.state.withLockedValue { state in
                for event in events {
                    if state.dropping {
                        guard case .enqueued = subscriber.continuation.yield(.missed(after: state.last)) else { continue }
                        state.dropping = false
                    }
                    switch subscriber.continuation.yield(.event(event)) {
                    case .enqueued:
                        state.last = event.id
                    case .dropped:
                        state.dropping = true
                        logger.warning("a domain-event subscriber fell behind; it will read the log",
                                       metadata: ["subscriber": .string(subscriber.name), "event_id": .stringConvertible(event.id)])
                    case .terminated:
                        return
                    @unknown default:
                        return
                    }
                }
            }
        }
    }

    /// Ends every stream (shutdown).
    func finishAll() {
        for subscriber in subscribers.withLockedValue({ $0 }) { subscriber.continuation.finish() }
    }
}
