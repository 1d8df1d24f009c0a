/// The name of a kind of event, as clients see it in a frame's `type` (`message.created`).
///
/// Each feature declares the names of its own events in an extension, so the outbox knows no
/// feature's vocabulary.
struct EventType: RawRepresentable, Hashable, Codable, Sendable, CustomStringConvertible {
    let rawValue: String

    init(rawValue: String) {
        self.rawValue = rawValue
    }

    init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    var description: String { rawValue }
}
