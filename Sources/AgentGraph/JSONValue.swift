import Foundation

/// A JSON document held in memory: interrupt payloads, resume values, custom stream events,
/// store items and run configuration travel as `JSONValue` so they can be checkpointed.
public enum JSONValue: Codable, Sendable, Hashable {
    case null
    case bool(Bool)
    /// Whole numbers, kept exactly (a Double holds integers exactly only up to 2^53).
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Converts any `Encodable` value to its JSON form.
    public init(encoding value: some Encodable) throws {
        if let json = value as? JSONValue {
            self = json
            return
        }
        self = try JSONCoding.decoder.decode(JSONValue.self, from: JSONCoding.encoder.encode(value))
    }

    /// Decodes this JSON into a typed value.
    public func decode<T: Decodable>(as type: T.Type = T.self) throws -> T {
        if let value = self as? T { return value }
        return try JSONCoding.decoder.decode(T.self, from: JSONCoding.encoder.encode(self))
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// Compact JSON text, keys sorted, for logs, cache keys and embedding input.
    public var jsonText: String {
        (try? String(decoding: JSONCoding.sortedEncoder.encode(self), as: UTF8.self)) ?? "null"
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .integer(Int64(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

/// Shared coders. `JSONEncoder` and `JSONDecoder` are safe to use from several tasks at once.
enum JSONCoding {
    // Dates keep Foundation's default form (seconds as a number), which reads back exactly;
    // ISO 8601 text would drop fractions of a second.
    static let encoder = JSONEncoder()
    static let sortedEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
    static let decoder = JSONDecoder()
}
