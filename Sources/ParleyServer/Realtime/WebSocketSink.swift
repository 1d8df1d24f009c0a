import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket
import Vapor

/// What `WebSocketSink` needs of a WebSocket: its loop, text frames, and closing.
protocol FrameSocket: AnyObject, Sendable {
    var eventLoop: any EventLoop { get }
    var isClosed: Bool { get }
    /// Writes one text frame; call on `eventLoop`.
    func writeText(_ bytes: ByteBufferView, promise: EventLoopPromise<Void>?)
    /// Starts closing with `code`.
    func closeSoon(code: WebSocketErrorCode)
}

extension WebSocket: FrameSocket {
    func writeText(_ bytes: ByteBufferView, promise: EventLoopPromise<Void>?) {
        send(raw: bytes, opcode: .text, promise: promise)
    }

    func closeSoon(code: WebSocketErrorCode) {
        close(code: code, promise: nil)
    }
}

/// A WebSocket as the event hub's direct sink: the hub writes each frame's shared bytes to the
/// socket from its own loop, with no task woken per frame and connection.
///
/// Frames reach the socket in the order they were written here. The hub (an actor) may call
/// from any thread: a frame written from another thread waits its turn on the socket's loop,
/// and one written on the loop meanwhile queues behind it rather than going first, as NIO's
/// `writeAndFlush` would let it (it writes at once on its loop, and hops otherwise). That once
/// let an assistant's reply overtake its last `assistant.delta`.
///
/// Frames not yet written to the socket are counted; a client that lets more than `limit`
/// pile up (it stopped reading) is told where to resume (`{"type":"resume","data":{"since":N}}`,
/// N being the last event queued before it) and closed with code 4008, as a stream subscriber
/// that overflows its buffer is. Its memory on the server stays bounded either way.
final class WebSocketSink: FrameSink {
    private let socket: any FrameSocket
    private let limit: Int
    private struct State {
        var unwritten = 0
        /// Frames handed to the loop that it has not written yet: while there are any, a frame
        /// written on the loop goes behind them.
        var hopping = 0
        /// The id of the last event (or cursor frame) queued to the socket.
        var lastSent: Int
        /// Cut off: nothing more is written, and the client has been told where to resume.
        var cut = false
    }
    private let state: NIOLockedValueBox<State>

    init(_ socket: any FrameSocket, limit: Int, lastSent: Int) {
        self.socket = socket
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
            let written = socket.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenComplete { [state] _ in state.withLockedValue { $0.unwritten -= 1 } }
            inOrder { [socket] in socket.writeText(frame.bytes.readableBytesView, promise: written) }
            return true
        }
    }

    /// Stops writing, says where to resume, and closes the connection (once).
    func cutOff() {
        let since = state.withLockedValue { state -> Int? in
            defer { state.cut = true }
            return state.cut ? nil : state.lastSent
        }
        guard let since else { return }
        inOrder { [socket] in
            guard !socket.isClosed else { return }
            socket.writeText(ByteBuffer(string: #"{"type":"resume","data":{"since":\#(since)}}"#).readableBytesView, promise: nil)
            socket.closeSoon(code: .unknown(4008))
        }
    }

    /// Runs `body` on the socket's loop after everything handed to it before: at once when
    /// called there with nothing waiting, else queued on the loop.
    private func inOrder(_ body: @escaping @Sendable () -> Void) {
        let loop = socket.eventLoop, box = state
        let now = box.withLockedValue { state -> Bool in
            if loop.inEventLoop && state.hopping == 0 { return true }
            state.hopping += 1
            // Queued under the lock, so two callers' frames queue in the order they counted.
            loop.execute {
                box.withLockedValue { $0.hopping -= 1 }
                body()
            }
            return false
        }
        if now { body() }
    }
}
