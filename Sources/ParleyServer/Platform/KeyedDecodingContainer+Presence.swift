import Vapor

extension KeyedDecodingContainer {
    /// `nil` when the key is absent, `.some(nil)` when it is `null`, `.some(value)` otherwise.
    func decodePresence<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T?? {
        guard contains(key) else { return nil }
        return .some(try decodeIfPresent(T.self, forKey: key))
    }
}
