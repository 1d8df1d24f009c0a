import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOWebSocket
import Testing
import Vapor
@testable import ParleyServer

@Suite("WebSocket sink")
struct WebSocketSinkTests {
    /// A socket on a real event loop that records the text frames written to it, in order.
    final class RecordingSocket: FrameSocket {
        let eventLoop: any EventLoop
        let frames = NIOLockedValueBox<[String]>([])
        let closedWith = NIOLockedValueBox<WebSocketErrorCode?>(nil)
        /// Writes not finished yet (as a client that stopped reading leaves them).
        let pending = NIOLockedValueBox<[EventLoopPromise<Void>]>([])
        let finishes: Bool
        var isClosed: Bool { closedWith.withLockedValue { $0 != nil } }

        init(on loop: any EventLoop, finishes: Bool = true) {
            eventLoop = loop
            self.finishes = finishes
        }

        /// As a WebSocket's own send does (NIO's `writeAndFlush`): at once on its loop, else
        /// handed to the loop.
        func writeText(_ bytes: ByteBufferView, promise: EventLoopPromise<Void>?) {
            let text = String(decoding: bytes, as: UTF8.self)
            let record: @Sendable () -> Void = { [self] in
                frames.withLockedValue { $0.append(text) }
                if finishes { promise?.succeed() } else if let promise { pending.withLockedValue { $0.append(promise) } }
            }
            if eventLoop.inEventLoop { record() } else { eventLoop.execute(record) }
        }

        func closeSoon(code: WebSocketErrorCode) {
            closedWith.withLockedValue { $0 = code }
        }
    }

    static func frame(_ type: String) -> EventFrame {
        EventFrame(id: nil, type: type, conversationID: UUID().uuidString, data: "{}", at: Date())
    }

    static func types(_ socket: RecordingSocket) -> [String] {
        socket.frames.withLockedValue { frames in
            frames.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }.compactMap { $0["type"] as? String }
        }
    }

    @Test("a frame written on the socket's loop does not overtake one written earlier from another thread", .timeLimit(.minutes(1)))
    func keepsOrderAcrossThreads() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let socket = RecordingSocket(on: loop)
        let sink = WebSocketSink(socket, limit: 100, lastSent: 0)
        // The loop is held in a task of its own; "first" is written from a dispatch thread meanwhile,
        // so it waits on the loop's queue behind that task, which then writes "second" on the
        // loop. Written straight to the socket there, "second" went out first.
        let held = DispatchSemaphore(value: 0), go = DispatchSemaphore(value: 0)
        let done = loop.submit { () -> Bool in
            held.signal()
            guard go.wait(timeout: .now() + 30) == .success else { return false }
            return sink.write(Self.frame("second"))
        }
        let first: Bool = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                guard held.wait(timeout: .now() + 30) == .success else { return continuation.resume(returning: false) }
                let written = sink.write(Self.frame("first"))
                go.signal()
                continuation.resume(returning: written)
            }
        }
        #expect(first)
        #expect(try await done.get())
        // Everything queued so far has run once a task submitted now has.
        try await loop.submit {}.get()
        #expect(Self.types(socket) == ["first", "second"])
    }

    @Test("a client that lets frames pile up is told where to resume, after the frames before it, and closed with 4008")
    func cutsOffInOrder() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let socket = RecordingSocket(on: loop, finishes: false)
        let sink = WebSocketSink(socket, limit: 2, lastSent: 7)
        #expect(sink.write(EventFrame(id: 8, type: "message.created", conversationID: UUID().uuidString, data: "{}", at: Date())))
        #expect(sink.write(EventFrame(id: 9, type: "message.created", conversationID: UUID().uuidString, data: "{}", at: Date())))
        #expect(!sink.write(Self.frame("overflow")))
        #expect(!sink.write(Self.frame("after")))
        try await loop.submit {}.get()
        #expect(Self.types(socket) == ["message.created", "message.created", "resume"])
        #expect(socket.frames.withLockedValue { $0.last } == #"{"type":"resume","data":{"since":9}}"#)
        #expect(socket.closedWith.withLockedValue { $0 } == .unknown(4008))
        try await loop.submit { socket.pending.withLockedValue { $0 }.forEach { $0.succeed() } }.get()
    }
}
