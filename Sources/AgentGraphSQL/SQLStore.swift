import AgentGraph
import Foundation
import SQLKit

/// AgentGraph's long-term store in SQL, through SQLKit (SQLite and PostgreSQL).
///
/// Embeddings are stored beside each item as little-endian 32-bit floats; a query search
/// reads the candidate vectors under the namespace prefix and ranks them by cosine similarity
/// in process, which suits the thousands of memories an assistant keeps per user. (A vector
/// index such as pgvector is not among this project's dependencies.)
public final class SQLStore: GraphStore {
    let database: any SQLDatabase
    let table: String
    let index: StoreIndex?
    let now: @Sendable () -> Date

    /// Separates namespace parts in the stored key; it cannot appear in a part.
    static let separator = "\u{1F}"

    public init(database: any SQLDatabase, index: StoreIndex? = nil, tablePrefix: String = "agentgraph_", now: @escaping @Sendable () -> Date = { Date() }) {
        self.database = database
        self.table = tablePrefix + "store"
        self.index = index
        self.now = now
    }

    public func prepare() async throws {
        try await database.create(table: table).ifNotExists()
            .column("namespace", type: .text, .notNull)
            .column("key", type: .text, .notNull)
            .column("value", type: .text, .notNull)
            .column("created_at", type: .custom(SQLRaw("DOUBLE PRECISION")), .notNull)
            .column("updated_at", type: .custom(SQLRaw("DOUBLE PRECISION")), .notNull)
            .column("expires_at", type: .custom(SQLRaw("DOUBLE PRECISION")))
            .column("embedding", type: .blob)
            .primaryKey("namespace", "key")
            .run()
    }

    static func encode(_ namespace: [String]) throws -> String {
        if namespace.contains(where: { $0.contains(separator) }) {
            throw StoreError.invalidNamespace(namespace)
        }
        return namespace.joined(separator: separator)
    }

    public func put(_ namespace: [String], key: String, value: JSONValue, ttl: Duration?, index shouldIndex: Bool) async throws {
        let space = try Self.encode(namespace)
        var embedding: Data?
        if shouldIndex, let index, let text = index.text(of: value), let vector = try await index.embed([text]).first {
            embedding = vector.withUnsafeBytes { Data($0) }
        }
        let now = self.now().timeIntervalSince1970
        let expires = ttl.map { now + Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        try await database.raw("""
            INSERT INTO \(ident: table) (namespace, key, value, created_at, updated_at, expires_at, embedding)
            VALUES (\(bind: space), \(bind: key), \(bind: value.jsonText), \(bind: now), \(bind: now), \(bind: expires), \(bind: embedding))
            ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
              expires_at = excluded.expires_at, embedding = excluded.embedding
            """).run()
    }

    public func get(_ namespace: [String], key: String) async throws -> StoreItem? {
        let now = self.now().timeIntervalSince1970
        let row = try await database.raw("""
            SELECT namespace, key, value, created_at, updated_at, expires_at FROM \(ident: table)
            WHERE namespace = \(bind: try Self.encode(namespace)) AND key = \(bind: key)
              AND (expires_at IS NULL OR expires_at > \(bind: now))
            """).first()
        return try row.map { try Self.item($0) }
    }

    public func delete(_ namespace: [String], key: String) async throws {
        try await database.raw("""
            DELETE FROM \(ident: table) WHERE namespace = \(bind: try Self.encode(namespace)) AND key = \(bind: key)
            """).run()
    }

    public func search(_ prefix: [String], query: String?, filter: [String: JSONValue], limit: Int, offset: Int) async throws -> [StoreItem] {
        let space = try Self.encode(prefix)
        let now = self.now().timeIntervalSince1970
        let nested = prefix.isEmpty ? "" : space + Self.separator
        let inPrefix: SQLQueryString = prefix.isEmpty ? "1 = 1" : """
            (namespace = \(bind: space) OR substr(namespace, 1, CAST(\(bind: nested.unicodeScalars.count) AS INTEGER)) = \(bind: nested))
            """
        let rows = try await database.raw("""
            SELECT namespace, key, value, created_at, updated_at, expires_at, embedding FROM \(ident: table)
            WHERE \(inPrefix) AND (expires_at IS NULL OR expires_at > \(bind: now))
            """).all()
        var candidates: [(item: StoreItem, vector: [Float]?)] = []
        for row in rows {
            let item = try Self.item(row)
            guard StoreRanking.matches(item.value, filter) else { continue }
            let vector = try row.decode(column: "embedding", as: Data?.self).map { data in
                data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            }
            candidates.append((item, vector))
        }
        var queryVector: [Float]?
        if let query, let index {
            queryVector = try await index.embed([query]).first
        }
        return StoreRanking.rank(candidates, query: queryVector, limit: limit, offset: offset)
    }

    public func listNamespaces(prefix: [String]) async throws -> [[String]] {
        let now = self.now().timeIntervalSince1970
        let rows = try await database.raw("""
            SELECT DISTINCT namespace FROM \(ident: table) WHERE expires_at IS NULL OR expires_at > \(bind: now) ORDER BY namespace
            """).all()
        return try rows.map { try $0.decode(column: "namespace", as: String.self).components(separatedBy: Self.separator) }
            .filter { $0.count >= prefix.count && Array($0.prefix(prefix.count)) == prefix }
    }

    /// Deletes expired items; returns how many.
    @discardableResult
    public func sweepExpired() async throws -> Int {
        let rows = try await database.raw("""
            DELETE FROM \(ident: table) WHERE expires_at IS NOT NULL AND expires_at <= \(bind: now().timeIntervalSince1970) RETURNING key
            """).all()
        return rows.count
    }

    static func item(_ row: any SQLRow) throws -> StoreItem {
        let text = try row.decode(column: "value", as: String.self)
        return StoreItem(
            namespace: try row.decode(column: "namespace", as: String.self).components(separatedBy: separator),
            key: try row.decode(column: "key", as: String.self),
            value: try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)),
            createdAt: Date(timeIntervalSince1970: try row.decode(column: "created_at", as: Double.self)),
            updatedAt: Date(timeIntervalSince1970: try row.decode(column: "updated_at", as: Double.self)),
            expiresAt: try row.decode(column: "expires_at", as: Double?.self).map(Date.init(timeIntervalSince1970:)),
            score: nil
        )
    }
}

public enum StoreError: Error, CustomStringConvertible {
    case invalidNamespace([String])

    public var description: String {
        switch self {
        case .invalidNamespace(let parts): "namespace parts may not contain U+001F: \(parts)"
        }
    }
}
