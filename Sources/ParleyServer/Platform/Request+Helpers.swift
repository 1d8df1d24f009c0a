import Fluent
import Vapor

extension Request {
    /// `?limit=` within `range`, 422 otherwise.
    func pageLimit(default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw = query[String.self, at: "limit"] else { return value }
        guard let limit = Int(raw), range.contains(limit) else {
            throw ProblemError.validation(field: "limit", code: "out_of_range",
                                          message: "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return limit
    }

    /// An optional integer query parameter, 422 when it is not one.
    func intQuery(_ name: String, minimum: Int = 0) throws -> Int? {
        guard let raw = query[String.self, at: name] else { return nil }
        guard let value = Int(raw), value >= minimum else {
            throw ProblemError.validation(field: name, code: "invalid", message: "must be a whole number ≥ \(minimum)")
        }
        return value
    }

    /// JSON with a strong ETag over the exact bytes; a matching `If-None-Match` gets 304 and no body.
    /// `etag` makes the validator from the encoded bytes (a digest of them by default).
    func conditionalJSON(_ value: some Encodable, etag makeETag: (Data) -> String = Request.digestETag) throws -> Response {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        let etag = makeETag(data)
        var headers = HTTPHeaders()
        headers.replaceOrAdd(name: .eTag, value: etag)
        headers.replaceOrAdd(name: .cacheControl, value: "private, no-cache")
        if let match = self.headers.first(name: .ifNoneMatch),
           match.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag || $0.trimmingCharacters(in: .whitespaces) == "*" }) {
            return Response(status: .notModified, headers: headers)
        }
        headers.contentType = .json
        return Response(status: .ok, headers: headers, body: .init(data: data))
    }

    static func digestETag(_ data: Data) -> String {
        "\"" + String(SHA256.hash(data: data).hexString.prefix(32)) + "\""
    }

    /// A path parameter that must be an id. Anything else names nothing, so it gets `notFound`
    /// (the same answer as an id that does not exist).
    func idParameter(_ name: String, orThrow notFound: some Error) throws -> UUID {
        guard let raw = parameters.get(name), let id = UUID(wire: raw) else { throw notFound }
        return id
    }

    /// A path parameter that must be a sequence number (≥ 1); anything else gets `notFound`.
    func seqParameter(_ name: String, orThrow notFound: some Error) throws -> Int {
        guard let raw = parameters.get(name), let seq = Int(raw), seq >= 1 else { throw notFound }
        return seq
    }
}
