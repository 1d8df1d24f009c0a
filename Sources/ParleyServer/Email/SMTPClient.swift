import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Sends mail through an SMTP server (RFC 5321): plain, STARTTLS (RFC 3207) or implicit TLS,
/// with AUTH PLAIN (RFC 4616) when the URL carries a user.
///
/// Hand-written on SwiftNIO and NIOSSL: no listed package speaks SMTP.
struct SMTPClient: Sendable {
    struct Server: Sendable, Equatable {
        enum Security: String, Sendable, Equatable {
            /// `smtp://`: upgraded with STARTTLS when the server offers it.
            case opportunistic
            /// `smtp://…?tls=required`: refuse to send unless STARTTLS succeeds.
            case startTLS
            /// `smtps://`: TLS from the first byte (port 465).
            case implicit
            /// `smtp://…?tls=off`: never (a relay on this machine).
            case none
        }

        var host: String
        var port: Int
        var security: Security
        var username: String?
        var password: String?

        /// Parses `smtp://[user[:password]@]host[:port][?tls=required|off]` or `smtps://…`.
        static func parse(_ text: String) -> Server? {
            guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
                  let host = components.host, !host.isEmpty
            else { return nil }
            var security: Security
            switch scheme {
            case "smtp": security = .opportunistic
            case "smtps": security = .implicit
            default: return nil
            }
            if scheme == "smtp", let tls = components.queryItems?.first(where: { $0.name == "tls" })?.value {
                switch tls {
                case "required": security = .startTLS
                case "off": security = .none
                default: return nil
                }
            }
            return Server(host: host, port: components.port ?? (scheme == "smtps" ? 465 : 25), security: security,
                          username: components.user?.removingPercentEncoding, password: components.password?.removingPercentEncoding)
        }
    }

    /// A refusal: `permanent` for 5xx replies (retrying cannot help), otherwise transient.
    struct Failure: Error, CustomStringConvertible, Equatable {
        var code: Int
        var reply: String
        var permanent: Bool { (500...599).contains(code) }
        var description: String { "SMTP \(code): \(reply)" }
    }

    let server: Server
    /// The name this client gives in EHLO.
    var clientName = "parley.localhost"
    var timeout: TimeAmount = .seconds(30)

    /// Sends `message` (a complete RFC 5322 message, CRLF line ends) from `sender` to `recipients`.
    func send(_ message: String, from sender: String, to recipients: [String]) async throws {
        let (lines, continuation) = AsyncThrowingStream<String, any Error>.makeStream()
        let tlsContext = try NIOSSLContext(configuration: .makeClientConfiguration())
        let server = self.server
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if server.security == .implicit {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tlsContext, serverHostname: server.host))
                    }
                    try channel.pipeline.syncOperations.addHandler(SMTPLineHandler(continuation: continuation))
                }
            }
            .connect(host: server.host, port: server.port).get()
        var replies = lines.makeAsyncIterator()
        do {
            func reply(expect codes: ClosedRange<Int>) async throws -> (code: Int, lines: [String]) {
                var text: [String] = []
                while let line = try await replies.next() {
                    text.append(String(line.dropFirst(4)))
                    // "250-…" continues, "250 …" (or a bare "250") ends the reply.
                    guard line.count < 4 || line[line.index(line.startIndex, offsetBy: 3)] != "-" else { continue }
                    let code = Int(line.prefix(3)) ?? 0
                    guard codes.contains(code) else { throw Failure(code: code, reply: text.joined(separator: " ")) }
                    return (code, text)
                }
                throw Failure(code: 421, reply: "the server closed the connection")
            }
            func command(_ text: String, expect codes: ClosedRange<Int>) async throws -> (code: Int, lines: [String]) {
                try await channel.writeAndFlush(ByteBuffer(string: text + "\r\n"))
                return try await reply(expect: codes)
            }

            _ = try await reply(expect: 220...220)
            var capabilities = try await command("EHLO \(clientName)", expect: 250...250).lines.map { $0.uppercased() }
            let offersTLS = capabilities.contains { $0.hasPrefix("STARTTLS") }
            if server.security == .startTLS || (server.security == .opportunistic && offersTLS) {
                _ = try await command("STARTTLS", expect: 220...220)
                try await channel.pipeline.addHandler(try NIOSSLClientHandler(context: tlsContext, serverHostname: server.host),
                                                      position: .first).get()
                capabilities = try await command("EHLO \(clientName)", expect: 250...250).lines.map { $0.uppercased() }
            }
            if let username = server.username {
                let token = Data(([0] + Array(username.utf8) + [0] + Array((server.password ?? "").utf8))).base64EncodedString()
                _ = try await command("AUTH PLAIN \(token)", expect: 235...235)
            }
            _ = try await command("MAIL FROM:<\(sender)>", expect: 250...250)
            for recipient in recipients { _ = try await command("RCPT TO:<\(recipient)>", expect: 250...251) }
            _ = try await command("DATA", expect: 354...354)
            try await channel.writeAndFlush(ByteBuffer(string: Self.dotStuffed(message) + ".\r\n"))
            _ = try await reply(expect: 250...250)
            _ = try? await command("QUIT", expect: 221...221)
            try? await channel.close()
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// The message as DATA sends it: CRLF line ends, a leading "." doubled (RFC 5321 §4.5.2),
    /// ending with CRLF.
    static func dotStuffed(_ message: String) -> String {
        var lines = message.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        return lines.map { $0.hasPrefix(".") ? "." + $0 : String($0) }.joined(separator: "\r\n") + "\r\n"
    }
}

/// Hands the server's reply lines (without CRLF) to the client, in order.
private final class SMTPLineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let continuation: AsyncThrowingStream<String, any Error>.Continuation
    private var pending: [UInt8] = []

    init(continuation: AsyncThrowingStream<String, any Error>.Continuation) {
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        pending += buffer.readableBytesView
        while let end = pending.firstIndex(of: 0x0A) {
            var line = Array(pending[..<end])
            if line.last == 0x0D { line.removeLast() }
            pending.removeSubrange(...end)
            continuation.yield(String(decoding: line, as: UTF8.self))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish(throwing: error)
        context.close(promise: nil)
    }
}
