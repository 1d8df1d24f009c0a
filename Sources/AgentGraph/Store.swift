import Foundation
import Synchronization

/// An item of the long-term store.
public struct StoreItem: Sendable, Equatable {
    public let namespace: [String]
    public let key: String
    public let value: JSONValue
    public let createdAt: Date
    public let updatedAt: Date
    public let expiresAt: Date?
    /// Similarity to the search query (cosine, -1…1), for results of a query search.
    public var score: Double?

    public init(namespace: [String], key: String, value: JSONValue, createdAt: Date, updatedAt: Date, expiresAt: Date?, score: Double? = nil) {
        self.namespace = namespace
        self.key = key
        self.value = value
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.expiresAt = expiresAt
        self.score = score
    }
}

/// Turns texts into embedding vectors (an embeddings API, a local model…).
public typealias Embedder = @Sendable ([String]) async throws -> [[Float]]

/// How a store indexes items for similarity search.
public struct StoreIndex: Sendable {
    public let embed: Embedder
    /// Top-level keys of the value whose text is embedded; nil embeds the whole value's JSON.
    public let fields: [String]?

    public init(fields: [String]? = nil, embed: @escaping Embedder) {
        self.fields = fields
        self.embed = embed
    }

    /// The text embedded for a value, or nil when it has none of the fields.
    public func text(of value: JSONValue) -> String? {
        guard let fields else { return value.jsonText }
        let parts = fields.compactMap { field -> String? in
            guard let part = value[field] else { return nil }
            return part.stringValue ?? part.jsonText
        }
        return parts.isEmpty ? nil : parts.joined(separator: "\n")
    }
}

/// Long-term memory shared across threads: JSON items by namespace and key, with optional
/// expiry and similarity search.
public protocol GraphStore: Sendable {
    /// Creates or replaces an item. With `ttl` it expires after that long. With `index` false
    /// it is not embedded, even when the store has an index.
    func put(_ namespace: [String], key: String, value: JSONValue, ttl: Duration?, index: Bool) async throws
    func get(_ namespace: [String], key: String) async throws -> StoreItem?
    func delete(_ namespace: [String], key: String) async throws
    /// Items under a namespace prefix whose values match `filter` (top-level keys equal).
    /// With a `query` (and an index), ranked by similarity to it; otherwise newest first.
    func search(_ prefix: [String], query: String?, filter: [String: JSONValue], limit: Int, offset: Int) async throws -> [StoreItem]
    /// Namespaces in use under a prefix.
    func listNamespaces(prefix: [String]) async throws -> [[String]]
}

extension GraphStore {
    public func put(_ namespace: [String], key: String, value: JSONValue) async throws {
        try await put(namespace, key: key, value: value, ttl: nil, index: true)
    }

    public func search(_ prefix: [String], query: String? = nil, filter: [String: JSONValue] = [:], limit: Int = 10) async throws -> [StoreItem] {
        try await search(prefix, query: query, filter: filter, limit: limit, offset: 0)
    }
}

/// Filtering and ranking shared by the store implementations.
public enum StoreRanking {
    public static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == b.count, !a.isEmpty else { return 0 }
        var dot: Float = 0, normA: Float = 0, normB: Float = 0
        for i in a.indices {
            dot += a[i] * b[i]
            normA += a[i] * a[i]
            normB += b[i] * b[i]
        }
        guard normA > 0, normB > 0 else { return 0 }
        return Double(dot / (normA.squareRoot() * normB.squareRoot()))
    }

    public static func matches(_ value: JSONValue, _ filter: [String: JSONValue]) -> Bool {
        filter.allSatisfy { value[$0.key] == $0.value }
    }

    public static func hasPrefix(_ namespace: [String], _ prefix: [String]) -> Bool {
        namespace.count >= prefix.count && Array(namespace.prefix(prefix.count)) == prefix
    }

    /// Ranks by similarity when a query vector is given, newest first otherwise.
    public static func rank(
        _ candidates: [(item: StoreItem, vector: [Float]?)], query: [Float]?, limit: Int, offset: Int
    ) -> [StoreItem] {
        var items: [StoreItem]
        if let query {
            items = candidates.compactMap { candidate in
                guard let vector = candidate.vector else { return nil }
                var item = candidate.item
                item.score = cosine(query, vector)
                return item
            }
            items.sort { ($0.score ?? 0, $0.updatedAt) > ($1.score ?? 0, $1.updatedAt) }
        } else {
            items = candidates.map(\.item)
            items.sort { ($0.updatedAt, $0.key) > ($1.updatedAt, $1.key) }
        }
        return Array(items.dropFirst(max(0, offset)).prefix(max(0, limit)))
    }
}

/// A store in process memory.
public final class InMemoryStore: GraphStore {
    struct Entry {
        var item: StoreItem
        var vector: [Float]?
    }

    private let entries = Mutex<[[String]: [String: Entry]]>([:])
    private let index: StoreIndex?
    private let now: @Sendable () -> Date

    public init(index: StoreIndex? = nil, now: @escaping @Sendable () -> Date = { Date() }) {
        self.index = index
        self.now = now
    }

    public func put(_ namespace: [String], key: String, value: JSONValue, ttl: Duration?, index shouldIndex: Bool) async throws {
        var vector: [Float]?
        if shouldIndex, let index, let text = index.text(of: value) {
            vector = try await index.embed([text]).first
        }
        let now = self.now()
        entries.withLock { entries in
            let created = entries[namespace]?[key]?.item.createdAt ?? now
            let item = StoreItem(
                namespace: namespace, key: key, value: value, createdAt: created, updatedAt: now,
                expiresAt: ttl.map { now.addingTimeInterval($0.seconds) }, score: nil
            )
            entries[namespace, default: [:]][key] = Entry(item: item, vector: vector)
        }
    }

    public func get(_ namespace: [String], key: String) async throws -> StoreItem? {
        let now = self.now()
        return entries.withLock { entries in
            guard let entry = entries[namespace]?[key] else { return nil }
            if let expiry = entry.item.expiresAt, expiry <= now {
                entries[namespace]?[key] = nil
                return nil
            }
            return entry.item
        }
    }

    public func delete(_ namespace: [String], key: String) async throws {
        _ = entries.withLock { $0[namespace]?.removeValue(forKey: key) }
    }

    public func search(_ prefix: [String], query: String?, filter: [String: JSONValue], limit: Int, offset: Int) async throws -> [StoreItem] {
        let now = self.now()
        let candidates = entries.withLock { entries in
            entries.filter { StoreRanking.hasPrefix($0.key, prefix) }.values.flatMap(\.values).filter { entry in
                (entry.item.expiresAt.map { $0 > now } ?? true) && StoreRanking.matches(entry.item.value, filter)
            }.map { (item: $0.item, vector: $0.vector) }
        }
        var queryVector: [Float]?
        if let query, let index {
            queryVector = try await index.embed([query]).first
        }
        return StoreRanking.rank(candidates, query: queryVector, limit: limit, offset: offset)
    }

    public func listNamespaces(prefix: [String]) async throws -> [[String]] {
        entries.withLock { entries in
            entries.filter { StoreRanking.hasPrefix($0.key, prefix) && !$0.value.isEmpty }.keys.sorted { $0.joined(separator: "/") < $1.joined(separator: "/") }
        }
    }
}
