import Crypto
import Foundation
import JWT
import NIOConcurrencyHelpers
import Testing
import Vapor
import VaporTesting
@testable import ParleyServer

/// Web Push: subscriptions, and a notification delivered encrypted (RFC 8291) and signed
/// (RFC 8292) to a push service, here a local receiver that decrypts and verifies what it gets.
@Suite("Web Push")
struct PushTests {
    /// A browser's side of a subscription: its key pair and secret.
    struct Browser {
        let key = P256.KeyAgreement.PrivateKey()
        let auth = Data((0..<16).map { _ in UInt8.random(in: 0...255) })

        var json: String {
            #""keys":{"p256dh":"\#(key.publicKey.x963Representation.base64URLEncodedString())","auth":"\#(auth.base64URLEncodedString())"},"expirationTime":null"#
        }

        /// Opens an `aes128gcm` body as a browser does (RFC 8291 §3.4, RFC 8188 §2).
        func decrypt(_ body: [UInt8]) throws -> [UInt8] {
            try #require(body.count > 21)
            let salt = Array(body[0..<16])
            let idLength = Int(body[20])
            let senderPublic = Data(body[21..<(21 + idLength)])
            let sealed = Array(body[(21 + idLength)...])
            let sender = try P256.KeyAgreement.PublicKey(x963Representation: senderPublic)
            let shared = try key.sharedSecretFromKeyAgreement(with: sender)
            let info = Data("WebPush: info".utf8) + [0] + key.publicKey.x963Representation + senderPublic
            let ikm = shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: auth, sharedInfo: info, outputByteCount: 32)
            let prk = HKDF<SHA256>.extract(inputKeyMaterial: ikm, salt: salt)
            let cek = HKDF<SHA256>.expand(pseudoRandomKey: prk, info: Data("Content-Encoding: aes128gcm".utf8) + [0], outputByteCount: 16)
            let nonce = HKDF<SHA256>.expand(pseudoRandomKey: prk, info: Data("Content-Encoding: nonce".utf8) + [0], outputByteCount: 12)
            let box = try AES.GCM.SealedBox(nonce: try nonce.withUnsafeBytes { try AES.GCM.Nonce(data: Data($0)) },
                                            ciphertext: sealed.dropLast(16), tag: sealed.suffix(16))
            var plain = Array(try AES.GCM.open(box, using: cek))
            #expect(plain.last == 2, "the last record's delimiter")
            plain.removeLast()
            return plain
        }
    }

    /// A push service on 127.0.0.1: answers each POST with the next status and hands over what it got.
    final class Receiver: Sendable {
        struct Push: Sendable {
            let path: String
            let headers: HTTPHeaders
            let body: [UInt8]
        }

        let app: Application
        let pushes: AsyncStream<Push>
        let port: Int
        private let statuses: NIOLockedValueBox<[HTTPResponseStatus]>

        init(statuses: [HTTPResponseStatus]) async throws {
            app = try await Application.make(.testing)
            let (stream, continuation) = AsyncStream.makeStream(of: Push.self)
            pushes = stream
            let box = NIOLockedValueBox(statuses)
            self.statuses = box
            app.on(.POST, "push", ":id", body: .collect(maxSize: "1mb")) { request -> HTTPStatus in
                continuation.yield(Push(path: request.url.path, headers: request.headers,
                                        body: request.body.data.map { Array(buffer: $0) } ?? []))
                return box.withLockedValue { $0.isEmpty ? .created : $0.removeFirst() }
            }
            try await app.server.start(address: .hostname("127.0.0.1", port: 0))
            port = try #require(app.http.server.shared.localAddress?.port)
        }

        func stop() async throws {
            await app.server.shutdown()
            try await app.asyncShutdown()
        }
    }

    /// Turns what was committed into notifications, and those into push jobs, then lets this
    /// node's job worker run them (as a serving node's followers and worker do).
    static func deliver(_ app: Application) async throws {
        try await NotificationTests.settle(app)
        let follower = try #require(app.storage[PushFollowerKey.self])
        while try await follower.followOnce() {}
        app.jobs.start()
    }

    @Test("the RFC 8291 worked example encrypts to the RFC's bytes")
    func rfcExample() throws {
        func bytes(_ text: String) throws -> Data { try #require(Data(base64URLEncoded: text)) }
        let sender = try P256.KeyAgreement.PrivateKey(rawRepresentation: try bytes("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"))
        let body = try WebPushEncryption.encrypt(
            Array("When I grow up, I want to be a watermelon".utf8),
            p256dh: try bytes("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"),
            auth: try bytes("BTBZMqHH6r4Tts7J_aSIgg"), senderKey: sender, salt: Array(try bytes("DGv6ra1nlYgDCS1FRnbzlw")))
        #expect(Data(body).base64URLEncodedString() == RFC8291.ciphertext)
    }

    @Test("without PARLEY_PUSH_SUBJECT push is off: no key, and subscribing is refused")
    func off() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let status = try await app.send(.GET, "v1/push", token: ann.token)
            #expect(status["enabled"] as? Bool == false)
            #expect(status["public_key"] == nil)
            let refused = try await app.send(.POST, "v1/push/subscriptions", json: #"{"endpoint":"https://push.example.com/x",\#(Browser().json)}"#,
                                             token: ann.token)
            expectProblem(refused, .notFound)
            #expect(try await app.send(.GET, "v1/push/subscriptions", token: ann.token).items.isEmpty)
        }
        #expect(throws: SettingsError.self) { try Settings.load(from: ["PARLEY_PUSH_SUBJECT": "ops@example.com"]) }
        #expect(try Settings.load(from: ["PARLEY_PUSH_SUBJECT": "mailto:ops@example.com"]).webPush?.subject == "mailto:ops@example.com")
    }

    @Test("a subscription needs an https endpoint and the browser's real keys")
    func validation() async throws {
        try await withParley({ $0.webPush = .init(subject: "mailto:ops@example.com") }) { app, _ in
            let ann = try await app.user("ann")
            let plain = try await app.send(.POST, "v1/push/subscriptions", json: #"{"endpoint":"http://10.0.0.1/x",\#(Browser().json)}"#,
                                           token: ann.token)
            #expect(plain.fieldErrors == ["endpoint": "invalid"])
            let badKeys = try await app.send(.POST, "v1/push/subscriptions",
                                             json: #"{"endpoint":"https://push.example.com/x","keys":{"p256dh":"AAAA","auth":"AAAA"}}"#, token: ann.token)
            #expect(badKeys.fieldErrors == ["keys.p256dh": "invalid", "keys.auth": "invalid"])
            let unknown = try await app.send(.POST, "v1/push/subscriptions",
                                             json: #"{"endpoint":"https://push.example.com/x","extra":1,\#(Browser().json)}"#, token: ann.token)
            #expect(unknown.fieldErrors == ["extra": "unknown_field"])
            let made = try await app.send(.POST, "v1/push/subscriptions", json: #"{"endpoint":"https://push.example.com/x",\#(Browser().json)}"#,
                                          token: ann.token)
            #expect(made.status == .created)
            // The same browser subscribing again replaces its subscription.
            let again = try await app.send(.POST, "v1/push/subscriptions", json: #"{"endpoint":"https://push.example.com/x",\#(Browser().json)}"#,
                                           token: ann.token)
            #expect(again.string("id") == made.string("id"))
            #expect(try await app.send(.GET, "v1/push/subscriptions", token: ann.token).items.count == 1)
            let ben = try await app.user("ben")
            #expect(try await app.send(.DELETE, "v1/push/subscriptions/\(try #require(made.string("id")))", token: ben.token).status == .notFound)
            #expect(try await app.send(.DELETE, "v1/push/subscriptions/\(try #require(made.string("id")))", token: ann.token).status == .noContent)
        }
    }

    @Test("a mention reaches the person's browser through its push service, encrypted for it and signed by the server; a gone subscription is forgotten")
    func delivery() async throws {
        let receiver = try await Receiver(statuses: [.created, .gone])
        do {
            try await withParley({ $0.webPush = .init(subject: "mailto:ops@example.com", allowHTTPEndpoints: true) }) { app, _ in
                let ann = try await app.user("ann"), ben = try await app.user("ben")
                let group = try await app.conversation(ann, members: [ben])
                let browser = Browser()
                let endpoint = "http://127.0.0.1:\(receiver.port)/push/ben-laptop"
                let subscribed = try await app.send(.POST, "v1/push/subscriptions", json: #"{"endpoint":"\#(endpoint)",\#(browser.json)}"#,
                                                    token: ben.token)
                #expect(subscribed.status == .created, "\(subscribed.body)")
                let publicKey = try #require(try await app.send(.GET, "v1/push", token: ben.token).string("public_key"))

                let outcomes = try #require(app.storage[PushDeliveryKey.self]).outcomes
                try await app.post("@ben can you look at this?", in: group, by: ann)
                try await Self.deliver(app)
                let push = try await next(receiver.pushes, "the push")
                #expect(try await next(outcomes, "the push's outcome") == .delivered)

                #expect(push.path == "/push/ben-laptop")
                #expect(push.headers.first(name: "Content-Encoding") == "aes128gcm")
                #expect(push.headers.first(name: "TTL") == "86400")
                let authorization = try #require(push.headers.first(name: "Authorization"))
                let parts = Dictionary(uniqueKeysWithValues: authorization.dropFirst("vapid ".count).split(separator: ",").map {
                    let pair = $0.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1).map(String.init)
                    return (pair[0], pair.count > 1 ? pair[1] : "")
                })
                #expect(authorization.hasPrefix("vapid "))
                #expect(parts["k"] == publicKey)
                // The signature verifies with the key the browser subscribed with.
                let keys = JWTKeyCollection()
                let vapidKey = try P256.Signing.PublicKey(x963Representation: try #require(Data(base64URLEncoded: publicKey)))
                await keys.add(ecdsa: try ES256PublicKey(backing: vapidKey))
                struct Claims: JWTPayload {
                    var aud: AudienceClaim
                    var exp: ExpirationClaim
                    var sub: SubjectClaim
                    func verify(using algorithm: some JWTAlgorithm) async throws {}
                }
                let claims = try await keys.verify(try #require(parts["t"]), as: Claims.self)
                #expect(claims.aud.value == ["http://127.0.0.1:\(receiver.port)"])
                #expect(claims.sub.value == "mailto:ops@example.com")

                let message = try JSONDecoder().decode(PushDelivery.Message.self, from: Data(try browser.decrypt(push.body)))
                #expect(message.title == "@ann mentioned you" || message.title == "ann mentioned you")
                #expect(message.body == "@ben can you look at this?")
                #expect(message.url == "/#/c/\(group)/m/1")

                // The push service says the browser unsubscribed: the next push forgets it.
                try await app.post("@ben one more", in: group, by: ann)
                try await Self.deliver(app)
                _ = try await next(receiver.pushes, "the second push")
                #expect(try await next(outcomes, "the second push's outcome") == .gone)
                #expect(try await app.send(.GET, "v1/push/subscriptions", token: ben.token).items.isEmpty)
                await app.jobs.stop()
            }
        } catch {
            try await receiver.stop()
            throw error
        }
        try await receiver.stop()
    }
}

/// The next element of `stream`, failing instead of hanging if none comes.
func next<T: Sendable>(_ stream: AsyncStream<T>, _ what: String) async throws -> T {
    try await within(30, what) {
        var iterator = stream.makeAsyncIterator()
        return try #require(await iterator.next(), "\(what) never came")
    }
}

/// RFC 8291 §5's final message for its worked example.
enum RFC8291 {
    static let ciphertext = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
}
