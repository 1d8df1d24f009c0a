import Crypto
import Foundation
import JWT
import NIOConcurrencyHelpers

/// The claims of a Parley access token.
struct AccessClaims: JWTPayload {
    var sub: SubjectClaim
    /// The session (refresh-token family) the token belongs to; revoking it ends the token.
    var sid: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var jti: IDClaim

    /// Expiry is checked by `TokenService` against its injected clock, after the signature.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Signs and verifies access tokens; computes CSRF tokens.
struct TokenService: Sendable {
    let keys: JWTKeyCollection
    let algorithm: Settings.TokenAlgorithm
    let csrfKey: SymmetricKey
    let accessTokenLifetime: Duration
    let clock: AppClock
    /// Tokens this process verified, so a client's next requests skip decoding and checking
    /// the same JWT again.
    let verified = VerifiedTokens()

    static func makeKeys(_ serverKeys: ServerKeys, algorithm: Settings.TokenAlgorithm) async -> JWTKeyCollection {
        let digest: DigestAlgorithm = switch algorithm {
        case .hs256: .sha256
        case .hs384: .sha384
        case .hs512: .sha512
        }
        let bytes = serverKeys.tokenSigning.withUnsafeBytes { Data($0) }
        return await JWTKeyCollection().add(hmac: HMACKey(key: SymmetricKey(data: bytes)), digestAlgorithm: digest)
    }

    func issue(userID: UUID, sessionID: UUID) async throws -> (token: String, expiresIn: Int) {
        // Whole seconds: NumericDate values are conventionally integers.
        let now = Date(timeIntervalSince1970: clock.now().timeIntervalSince1970.rounded(.down))
        let lifetime = Int(accessTokenLifetime.components.seconds)
        let claims = AccessClaims(
            sub: .init(value: userID.wire),
            sid: sessionID.wire,
            iat: .init(value: now),
            exp: .init(value: now.addingTimeInterval(TimeInterval(lifetime))),
            jti: .init(value: OpaqueToken.generate()))
        return (try await keys.sign(claims), lifetime)
    }

    enum Failure: Error { case malformed, wrongAlgorithm, badSignature, expired }

    /// Verifies a token. Only the configured algorithm is accepted: `alg: none`, another HMAC
    /// size or an asymmetric algorithm is refused before any signature check.
    ///
    /// A token verified before is answered from `verified` until it expires (the signature
    /// and the claims of the same string cannot have changed); whether its session is still
    /// active is the caller's check, on every request.
    func verify(_ token: String) async throws(Failure) -> (userID: UUID, sessionID: UUID) {
        let now = clock.now()
        if let known = verified.identity(of: token, at: now) { return known }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
              let headerData = Data(base64URLEncoded: String(parts[0])),
              let header = try? JSONDecoder().decode(Header.self, from: headerData)
        else { throw .malformed }
        guard header.alg == algorithm.rawValue else { throw .wrongAlgorithm }
        let claims: AccessClaims
        do {
            claims = try await keys.verify(token, as: AccessClaims.self)
        } catch {
            throw .badSignature
        }
        guard claims.exp.value > now else { throw .expired }
        guard let userID = UUID(wire: claims.sub.value), let sessionID = UUID(wire: claims.sid) else {
            throw .malformed
        }
        verified.keep(token, userID: userID, sessionID: sessionID, expiresAt: claims.exp.value, now: now)
        return (userID, sessionID)
    }

    private struct Header: Decodable { var alg: String }

    /// The CSRF token that goes with a browser session: an HMAC of the session cookie, so it
    /// needs no storage and cannot be computed without the server secret.
    func csrfToken(forSessionToken sessionToken: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Data(sessionToken.utf8), using: csrfKey)).base64URLEncodedString()
    }

    func csrfTokenMatches(_ presented: String, sessionToken: String) -> Bool {
        let expected = Data(csrfToken(forSessionToken: sessionToken).utf8)
        let given = Data(presented.utf8)
        // Constant-time comparison of equal-length values.
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// Access tokens verified by this process, with what they say, until they expire: checking a
/// JWT (base64, two JSON documents, an HMAC) cost more than the rest of authenticating a
/// request, and a client sends the same token with every request for its lifetime.
///
/// Bounded: when `capacity` tokens are held, the expired ones are dropped and, if that frees
/// nothing, all of them (each is then verified once more on its next use). Hand-written: the
/// listed packages have no bounded cache with expiry.
final class VerifiedTokens: Sendable {
    struct Entry: Sendable {
        let userID: UUID
        let sessionID: UUID
        let expiresAt: Date
    }

    let capacity: Int
    private let entries = NIOLockedValueBox<[String: Entry]>([:])

    init(capacity: Int = 10_000) {
        self.capacity = max(1, capacity)
    }

    var count: Int { entries.withLockedValue { $0.count } }

    /// What `token` was verified to say, if it was and has not expired at `now`.
    func identity(of token: String, at now: Date) -> (userID: UUID, sessionID: UUID)? {
        guard let entry = entries.withLockedValue({ $0[token] }), entry.expiresAt > now else { return nil }
        return (entry.userID, entry.sessionID)
    }

    func keep(_ token: String, userID: UUID, sessionID: UUID, expiresAt: Date, now: Date) {
        entries.withLockedValue { entries in
            if entries.count >= capacity, entries[token] == nil {
                entries = entries.filter { $0.value.expiresAt > now }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[token] = Entry(userID: userID, sessionID: sessionID, expiresAt: expiresAt)
        }
    }
}
