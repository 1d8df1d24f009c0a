import Vapor

/// Gives every request an id: the caller's `X-Request-ID` when it is sane (1-128 of
/// `[A-Za-z0-9._:-]`), otherwise a fresh one. The id is echoed on the response and attached to
/// every log line of the request.
struct RequestIDMiddleware: AsyncMiddleware {
    static let header: HTTPHeaders.Name = "X-Request-ID"

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let id = Self.sanitized(request.headers.first(name: Self.header)) ?? Self.generate()
        request.storage[RequestIDKey.self] = id
        request.logger[metadataKey: "request_id"] = .string(id)
        let response: Response
        do {
            response = try await next.respond(to: request)
        } catch {
            response = ProblemMiddleware.response(for: error, request: request)
        }
        response.headers.replaceOrAdd(name: Self.header, value: id)
        return response
    }

    static func sanitized(_ value: String?) -> String? {
        guard let value, (1...128).contains(value.utf8.count) else { return nil }
        let allowed = value.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: ":"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
        return allowed ? value : nil
    }

    static func generate() -> String {
        UUID.timeOrdered().wire
    }
}

private struct RequestIDKey: StorageKey {
    typealias Value = String
}

extension Request {
    /// The id of this request, as sent in `X-Request-ID`.
    public var requestID: String {
        storage[RequestIDKey.self] ?? id
    }
}
