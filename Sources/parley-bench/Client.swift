import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import WebSocketKit

/// The few REST calls the benchmark needs, over AsyncHTTPClient.
struct API: Sendable {
    let http: HTTPClient
    let base: String

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    struct User: Sendable {
        let id: String
        let token: String
    }

    @discardableResult
    func call(_ method: HTTPMethod, _ path: String, token: String? = nil, json: String? = nil) async throws -> (status: Int, body: [String: Any]) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await http.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let body = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
        guard (200..<300).contains(Int(response.status.code)) else {
            throw Failure(description: "\(method) \(path): \(response.status.code) \(String(buffer: bytes))")
        }
        return (Int(response.status.code), body)
    }

    func register(_ handle: String) async throws -> User {
        let body = try await call(.POST, "/v1/auth/register", json: #"{"handle":"\#(handle)","password":"bench password 1234"}"#).body
        guard let token = body["access_token"] as? String, let id = (body["user"] as? [String: Any])?["id"] as? String else {
            throw Failure(description: "register: unexpected body \(body)")
        }
        return User(id: id, token: token)
    }

    func conversation(_ owner: User, kind: String, title: String?, visibility: String? = nil, members: [User] = []) async throws -> String {
        var fields = [#""kind":"\#(kind)""#]
        if let title { fields.append(#""title":"\#(title)""#) }
        if let visibility { fields.append(#""visibility":"\#(visibility)""#) }
        if !members.isEmpty { fields.append(#""member_ids":[\#(members.map { "\"\($0.id)\"" }.joined(separator: ","))]"#) }
        let body = try await call(.POST, "/v1/conversations", token: owner.token, json: "{" + fields.joined(separator: ",") + "}").body
        guard let id = body["id"] as? String else { throw Failure(description: "conversation: unexpected body \(body)") }
        return id
    }

    func join(_ user: User, _ conversation: String) async throws {
        try await call(.POST, "/v1/conversations/\(conversation)/join", token: user.token)
    }

    func send(_ user: User, _ conversation: String, body: String) async throws {
        try await call(.POST, "/v1/conversations/\(conversation)/messages", token: user.token, json: #"{"body":"\#(body)"}"#)
    }
}

/// A WebSocket subscriber that hands each `message.created` frame's body to a callback. It
/// finds the body by searching the text rather than decoding JSON, so that a thousand of them
/// in one process measure the server more than themselves.
final class Subscriber: Sendable {
    let socket: WebSocket

    private init(socket: WebSocket) {
        self.socket = socket
    }

    /// `since`: replay from that event id before going live, so that nothing sent after the
    /// call starts can be missed. Without it the stream starts live once the server has
    /// registered the connection, which may be a moment after the upgrade completes.
    static func connect(_ base: String, token: String, since: Int? = nil, on group: any EventLoopGroup,
                        onMessage: @escaping @Sendable (Substring) -> Void) async throws -> Subscriber {
        let url = base.replacingOccurrences(of: "http://", with: "ws://") + "/v1/events" + (since.map { "?since=\($0)" } ?? "")
        let promise = group.any().makePromise(of: WebSocket.self)
        WebSocket.connect(to: url, headers: ["Authorization": "Bearer \(token)"], configuration: .init(maxFrameSize: 1 << 20), on: group) { ws in
            ws.onText { _, text in
                guard text.contains(#""type":"message.created""#), let range = text.range(of: #""body":""#) else { return }
                let rest = text[range.upperBound...]
                guard let end = rest.firstIndex(of: "\"") else { return }
                onMessage(rest[..<end])
            }
            promise.succeed(ws)
        }.whenFailure { promise.fail($0) }
        return Subscriber(socket: try await promise.futureResult.get())
    }

    func close() async {
        try? await socket.close()
    }
}

/// The server's resident memory and CPU time, from /proc.
struct ProcessSample {
    let rssBytes: Int
    let cpuSeconds: Double

    static func read(pid: Int32) -> ProcessSample? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        else { return nil }
        let rssKiB = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first }.flatMap { Int($0) } ?? 0
        // Fields after the command name (which is in parentheses and may contain spaces).
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let utime = Double(fields[11]) ?? 0, stime = Double(fields[12]) ?? 0
        return ProcessSample(rssBytes: rssKiB * 1024, cpuSeconds: (utime + stime) / ticks)
    }
}

/// Counts down to zero and wakes the waiter; used to wait for deliveries without polling.
final class Countdown: Sendable {
    private let state: NIOLockedValueBox<(left: Int, waiter: CheckedContinuation<Void, Never>?)>

    init(_ count: Int) {
        state = NIOLockedValueBox((count, nil))
    }

    func tick() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            state.left -= 1
            guard state.left == 0 else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// How many are still to come.
    var left: Int { state.withLockedValue { $0.left } }

    /// Returns at zero, or when the task is cancelled (a waiter that gives up must not hang).
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let done = state.withLockedValue { state -> Bool in
                    if state.left <= 0 || Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if done { continuation.resume() }
            }
        } onCancel: {
            state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }?.resume()
        }
    }
}

/// Monotonic nanoseconds, comparable between tasks of this process.
func now() -> UInt64 {
    DispatchTime.now().uptimeNanoseconds
}
