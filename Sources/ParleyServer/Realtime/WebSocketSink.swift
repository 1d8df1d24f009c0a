import NIOConcurrencyHelpers
import NIOCore
import Vapor

/// A WebSocket as the event hub's direct sink: the hub writes each frame's shared bytes to the
/// socket from its own loop, with no task woken per frame and connection.
///
/// Frames not yet written to the socket are counted; a client that lets more than `limit`
/// pile up (it stopped reading) is told where to resume (`{"type":"resume","data":{"since":N}}`,
/// N being the last event queued before it) and closed with code 4008, as a stream subscriber
/// that overflows its buffer is. Its memory on the server stays bounded either way.
final class WebSocketSink: FrameSink {
    private let ws: WebSocket
    private let limit: Int
    private struct State {
        var unwritten = 0
        /// The id of the last event (or cursor frame) queued to the socket.
        var lastSent: Int
        /// Cut off: nothing more is written, and the client has been told where to resume.
        var cut = false
    }
    private let state: NIOLockedValueBox<State>

    init(_ ws: WebSocket, limit: Int, lastSent: Int) {
        self.ws = ws
        self.limit = limit
        self.state = NIOLockedValueBox(State(lastSent: lastSent))
    }

    func write(_ frame: EventFrame) -> Bool {
        enum Outcome { case queued, refused, overflowing }
        let outcome = state.withLockedValue { state -> Outcome in
            if state.cut { return .refused }
            if state.unwritten >= limit { return .overflowing }
            state.unwritten += 1
            if let id = frame.id ?? frame.resumeID { state.lastSent = id }
            return .queued
        }
        switch outcome {
        case .refused:
            return false
        case .overflowing:
            cutOff()
            return false
        case .queued:
            let written = ws.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenComplete { [state] _ in state.withLockedValue { $0.unwritten -= 1 } }
            ws.send(raw: frame.bytes.readableBytesView, opcode: .text, promise: written)
            return true
        }
    }

    /// Stops writing, says where to resume, and closes the connection (once).
    func cutOff() {
        let since = state.withLockedValue { state -> Int? in
            defer { state.cut = true }
            return state.cut ? nil : state.lastSent
        }
        guard let since, !ws.isClosed else { return }
        ws.send(#"{"type":"resume","data":{"since":\#(since)}}"#)
        _ = ws.close(code: .unknown(4008))
    }
}
