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

    init(logger: Logger) {
        self.logger = logger
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
