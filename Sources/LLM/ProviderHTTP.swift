import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// What every HTTP provider shares: turning error statuses and transport failures into
/// `LLMError`, and feeding a streamed body to the SSE decoder.
enum ProviderHTTP {
    /// Maps an error status to `LLMError`, from the status, `Retry-After` and the body's
    /// `error.code` / `error.message` (never echoing request headers, so never the key).
    static func check(_ status: HTTPResponseStatus, headers: HTTPHeaders, body: Data) throws(LLMError) {
        guard status.code >= 400 else { return }
        struct Wire: Decodable {
            struct Detail: Decodable { let message: String?; let code: String?; let type: String? }
            let error: Detail?
        }
        let detail = (try? JSONDecoder().decode(Wire.self, from: body))?.error
        let message = String((detail?.message ?? status.reasonPhrase).prefix(500))
        switch status.code {
        case 429:
            throw .rateLimited(retryAfter: retryAfter(headers))
        case 401, 403:
            throw .authentication(message)
        case 400, 413, 422:
            let code = detail?.code ?? ""
            let lower = message.lowercased()
            if code == "context_length_exceeded" || lower.contains("context length") || lower.contains("maximum context")
                || lower.contains("context window") || lower.contains("too many tokens") || lower.contains("prompt is too long") {
                throw .contextTooLong(message)
            }
            throw .badRequest(message)
        case 400..<500:
            throw .badRequest("\(status.code): \(message)")
        default:
            throw .unavailable("\(status.code): \(message)")
        }
    }

    /// `Retry-After` in seconds (or an HTTP date), or OpenAI's `retry-after-ms`.
    static func retryAfter(_ headers: HTTPHeaders) -> Double? {
        if let ms = headers.first(name: "retry-after-ms").flatMap(Double.init) { return ms / 1000 }
        guard let raw = headers.first(name: "Retry-After") else { return nil }
        if let seconds = Double(raw.trimmingCharacters(in: .whitespaces)) { return max(0, seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: raw).map { max(0, $0.timeIntervalSinceNow) }
    }

    static func transport(_ error: any Error, midStream: Bool = false) -> LLMError {
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .timedOut(String(describing: error))
        }
        return midStream ? .streamCut(String(describing: error)) : .unavailable(String(describing: error))
    }
}

/// A streamed HTTP body's buffers as byte slices, the form the SSE decoder reads.
struct ChunkStream<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ArraySlice<UInt8>
    let base: Base

    init(_ base: Base) {
        self.base = base
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator

        mutating func next() async throws -> ArraySlice<UInt8>? {
            guard let buffer = try await base.next() else { return nil }
            return ArraySlice(buffer.readableBytesView)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator())
    }
}
