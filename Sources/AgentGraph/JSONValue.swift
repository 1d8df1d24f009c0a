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

    /// Compact JSON text, keys sorted (by `String`'s order), for logs, cache keys, trace rows
    /// and embedding input; "null" when it holds a number JSON cannot write (NaN, infinity).
    /// Written here rather than by `JSONEncoder`, whose generic path was most of the cost of
    /// storing an assistant's trace step; a non-integral number still goes through it.
    public var jsonText: String {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(128)
        guard append(to: &buffer) else { return "null" }
        return String(decoding: buffer, as: UTF8.self)
    }

    private func append(to buffer: inout [UInt8]) -> Bool {
        switch self {
        case .null:
            buffer.append(contentsOf: "null".utf8)
        case .bool(let value):
            buffer.append(contentsOf: (value ? "true" : "false").utf8)
        case .integer(let value):
            buffer.append(contentsOf: String(value).utf8)
        case .number(let value):
            guard value.isFinite, let text = try? JSONCoding.sortedEncoder.encode(value) else { return false }
            buffer.append(contentsOf: text)
        case .string(let value):
            JSONText.appendString(value, to: &buffer)
        case .array(let items):
            buffer.append(UInt8(ascii: "["))
            for (position, item) in items.enumerated() {
                if position > 0 { buffer.append(UInt8(ascii: ",")) }
                guard item.append(to: &buffer) else { return false }
            }
            buffer.append(UInt8(ascii: "]"))
        case .object(let object):
            buffer.append(UInt8(ascii: "{"))
            for (position, key) in object.keys.sorted().enumerated() {
                if position > 0 { buffer.append(UInt8(ascii: ",")) }
                JSONText.appendString(key, to: &buffer)
                buffer.append(UInt8(ascii: ":"))
                guard object[key]?.append(to: &buffer) ?? false else { return false }
            }
            buffer.append(UInt8(ascii: "}"))
        }
        return true
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
