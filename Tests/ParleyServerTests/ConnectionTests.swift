import Foundation
import NIOCore
import NIOPosix
import Testing
import VaporTesting
@testable import ParleyServer

@Suite("Connections")
struct ConnectionTests {
    @Test("a client that stops halfway through a request's headers is disconnected after the idle timeout")
    func stalledHeadersAreClosed() async throws {
        try await withParley({ settings in
            settings.idleTimeout = .seconds(1)
            settings.heartbeatInterval = .milliseconds(500)
        }) { app, _ in
            let port = try await RealtimeTests.serve(app)
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            try await channel.writeAndFlush(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n")).get()
            // The server closes the connection; without the timeout this waits for the bound below.
            try await within(30, "the server to close the stalled connection") {
                try await channel.closeFuture.get()
            }
            #expect(!channel.isActive)
            await app.server.shutdown()
        }
    }
}
