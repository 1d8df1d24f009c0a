import Vapor

extension KeyedDecodingContainer {
    /// `nil` when the key is absent, `.some(nil)` when it is `null`, `.some(value)` otherwise.
    func decodePresence<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T?? {
        guard contains(key) else { return nil }
        return .some(try decodeIfPresent(T.self, forKey: key))
    }
}

extension Decoder {
    /// Throws a validation error naming the first key of this object that `Keys` does not
    /// list (422, `unknown_field`).
    func refuseUnknownKeys<Keys: CodingKey & CaseIterable>(allowed: Keys.Type) throws {
        guard let container = try? container(keyedBy: AnyCodingKey.self) else { return }
        let known = Set(Keys.allCases.map(\.stringValue))
        if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            throw ValidationError(field: unknown, code: "unknown_field", message: "is not a field of this request")
        }
    }
}

/// Any key of a JSON object, to list the keys a request sent.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
