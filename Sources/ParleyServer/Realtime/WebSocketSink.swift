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
        enum Outcome { case now, queued, refused, overflowing }
        let socket = self.socket, box = state
        let written = socket.eventLoop.makePromise(of: Void.self)
        let send: @Sendable () -> Void = { socket.writeText(frame.bytes.readableBytesView, promise: written) }
        // Counted and placed in the loop's queue under one lock: frames go out in the order
        // they were counted, and none after the cut-off's resume frame.
        let outcome = box.withLockedValue { state -> Outcome in
            if state.cut { return .refused }
            if state.unwritten >= limit { return .overflowing }
            state.unwritten += 1
            if let id = frame.id ?? frame.resumeID { state.lastSent = id }
            return Self.now(send, &state, box: box, loop: socket.eventLoop) ? .now : .queued
        }
        switch outcome {
        case .refused, .overflowing:
            written.succeed()
            if outcome == .overflowing { cutOff() }
            return false
        case .now, .queued:
            written.futureResult.whenComplete { _ in box.withLockedValue { $0.unwritten -= 1 } }
            if outcome == .now { send() }
            return true
        }
    }

    /// Stops writing, says where to resume, and closes the connection (once).
    func cutOff() {
        let socket = self.socket, box = state
        let runNow = box.withLockedValue { state -> (@Sendable () -> Void)? in
            guard !state.cut else { return nil }
            state.cut = true
            let since = state.lastSent
            let resume: @Sendable () -> Void = {
                guard !socket.isClosed else { return }
                socket.writeText(ByteBuffer(string: #"{"type":"resume","data":{"since":\#(since)}}"#).readableBytesView, promise: nil)
                socket.closeSoon(code: .unknown(4008))
            }
            return Self.now(resume, &state, box: box, loop: socket.eventLoop) ? resume : nil
        }
        runNow?()
    }

    /// With the lock held: true when `body` may run at once (on the socket's loop, with
    /// nothing handed to it still waiting), which the caller then does after the lock; else
    /// hands it to the loop, behind everything handed to it before.
    private static func now(_ body: @escaping @Sendable () -> Void, _ state: inout State, box: NIOLockedValueBox<State>,
                            loop: any EventLoop) -> Bool {
        if loop.inEventLoop && state.hopping == 0 { return true }
        state.hopping += 1
        loop.execute {
            box.withLockedValue { $0.hopping -= 1 }
            body()
        }
        return false
    }
}
