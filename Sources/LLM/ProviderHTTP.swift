import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OpenAPIRuntime

/// What every HTTP provider shares: turning error statuses and transport failures into
/// `LLMError`, and feeding a streamed body to the SSE decoder.
enum ProviderHTTP {
    /// Sends a streaming request and hands its Server-Sent Events to `read`, which yields the
    /// deltas; failures become `LLMError` (before the response: unavailable or timed out;
    /// after it: a cut stream). Cancelling the consumer cancels the request.
    static func stream(
        client: HTTPClient, request: Result<HTTPClientRequest, LLMError>, deadline: TimeAmount,
        _ read: @escaping @Sendable (_ events: any AsyncSequence<ServerSentEvent, any Error>,
                                     _ continuation: AsyncThrowingStream<ChatDelta, any Error>.Continuation) async throws -> Void
    ) -> AsyncThrowingStream<ChatDelta, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                var connected = false
                do {
                    let response = try await client.execute(try request.get(), timeout: deadline)
                    connected = true
                    if response.status != .ok {
                        let body = Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
                        try check(response.status, headers: response.headers, body: body)
                    }
                    try await read(ChunkStream(response.body).asDecodedServerSentEvents(), continuation)
                    continuation.finish()
                } catch let error as LLMError {
                    continuation.finish(throwing: error)
                } catch is CancellationError {
                    continuation.finish(throwing: CancellationError())
                } catch {
                    continuation.finish(throwing: transport(error, midStream: connected))
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Maps an error status to `LLMError`, from the status, `Retry-After` and the body's
    /// `error.code` / `error.message` (never echoing request headers, so never the key).
    static func check(_ status: HTTPResponseStatus, headers: HTTPHeaders, body: Data) throws(LLMError) {
        guard status.code >= 400 else { return }
        struct Wire: Decodable {
            struct Detail: Decodable {
                let message: String?, code: String?, type: String?

                enum CodingKeys: String, CodingKey { case message, code, type }

                init(from decoder: any Decoder) throws {
                    let container = try decoder.container(keyedBy: CodingKeys.self)
                    message = try? container.decodeIfPresent(String.self, forKey: .message)
                    type = try? container.decodeIfPresent(String.self, forKey: .type)
                    // OpenAI sends a string code ("context_length_exceeded"); llama.cpp and vLLM
                    // send the HTTP status as a number. Either must leave the message readable.
                    code = (try? container.decodeIfPresent(String.self, forKey: .code))
                        ?? (try? container.decodeIfPresent(Int.self, forKey: .code)).flatMap { $0.map(String.init) }
                }
            }
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
            if code == "context_length_exceeded" || detail?.type == "exceed_context_size_error"
                || lower.contains("context length") || lower.contains("maximum context") || lower.contains("context size")
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
