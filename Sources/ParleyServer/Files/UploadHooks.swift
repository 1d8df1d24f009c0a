import Foundation

/// Where tests watch an upload arrive and go: the first bytes in staging, and a refused or
/// broken upload's staging file removed. Keeps only the newest few events, so production,
/// where no one reads them, holds nothing.
final class UploadHooks: Sendable {
    enum Event: Sendable, Equatable {
        case receiving
        case discarded
    }

    let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation

    init() {
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(16))
    }

    func record(_ event: Event) {
        continuation.yield(event)
    }
}
