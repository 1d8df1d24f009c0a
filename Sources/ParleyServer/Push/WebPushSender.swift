import AsyncHTTPClient
import Foundation
import JWT
import NIOCore
import NIOHTTP1

/// Sends one push to one browser: the payload encrypted for it (RFC 8291), signed with the
/// server's VAPID key (RFC 8292), posted to its push service (RFC 8030).
struct WebPushSender: Sendable {
    /// What the push service said, as far as delivery cares.
    enum Outcome: Sendable, Equatable {
        case delivered
        /// The subscription is gone (404, 410): forget it.
        case gone
        /// Refused for good (another 4xx): do not retry.
        case refused(status: Int)
    }

    enum Failure: Error, Equatable {
        /// Try again later (429, 5xx, no connection).
        case unavailable(String)
    }

    private struct Claims: JWTPayload {
        var aud: AudienceClaim
        var exp: ExpirationClaim
        var sub: SubjectClaim
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    let key: VAPIDKey
    /// `mailto:` or `https:` contact for push services (RFC 8292).
    let subject: String
    let client: HTTPClient
    let clock: AppClock
    /// How long a push service keeps a push for a browser that is offline.
    var timeToLive = 24 * 3600

    func send(_ payload: [UInt8], to subscription: PushSubscription) async throws -> Outcome {
        guard let url = URL(string: subscription.endpoint), let scheme = url.scheme, let host = url.host else {
            return .refused(status: 0)
        }
        let audience = "\(scheme)://\(host)" + (url.port.map { ":\($0)" } ?? "")
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: try ES256PrivateKey(backing: key.privateKey))
        // Valid for twelve hours: the most a push service must accept is 24.
        let token = try await keys.sign(Claims(aud: .init(value: audience), exp: .init(value: clock.now().addingTimeInterval(12 * 3600)),
                                               sub: .init(value: subject)))
        let body = try WebPushEncryption.encrypt(payload, p256dh: subscription.p256dh, auth: subscription.auth)
        var request = HTTPClientRequest(url: subscription.endpoint)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "vapid t=\(token), k=\(key.publicKeyBase64URL)")
        request.headers.add(name: "Content-Encoding", value: "aes128gcm")
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.headers.add(name: "TTL", value: String(timeToLive))
        request.headers.add(name: "Urgency", value: "normal")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(15))
        } catch {
            throw Failure.unavailable("\(error)")
        }
        _ = try? await response.body.collect(upTo: 64 * 1024)
        switch response.status.code {
        case 200..<300: return .delivered
        case 404, 410: return .gone
        case 429, 500...: throw Failure.unavailable("the push service answered \(response.status.code)")
        default: return .refused(status: Int(response.status.code))
        }
    }
}
