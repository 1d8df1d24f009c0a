import Foundation
import Synchronization

/// Where node results cached by `CachePolicy` live.
public protocol NodeCache: Sendable {
    func get(_ key: String, now: Date) async -> Data?
    func set(_ key: String, _ value: Data, expiresAt: Date?) async
}

/// A node cache in process memory, bounded to `capacity` entries (oldest written evicted first).
public final class InMemoryNodeCache: NodeCache {
    struct Entry {
        let value: Data
        let expiresAt: Date?
        let order: Int
    }

    struct Contents {
        var entries: [String: Entry] = [:]
        var written = 0
    }

    private let contents = Mutex(Contents())
    private let capacity: Int

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    public func get(_ key: String, now: Date) async -> Data? {
        contents.withLock { contents in
            guard let entry = contents.entries[key] else { return nil }
            if let expiry = entry.expiresAt, expiry <= now {
                contents.entries[key] = nil
                return nil
            }
            return entry.value
        }
    }

    public func set(_ key: String, _ value: Data, expiresAt: Date?) async {
        contents.withLock { contents in
            contents.written += 1
            contents.entries[key] = Entry(value: value, expiresAt: expiresAt, order: contents.written)
            if contents.entries.count > capacity,
               let oldest = contents.entries.min(by: { $0.value.order < $1.value.order })?.key {
                contents.entries[oldest] = nil
            }
        }
    }

    public var count: Int { contents.withLock { $0.entries.count } }
}
