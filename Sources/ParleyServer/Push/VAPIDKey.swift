import Crypto
import Foundation

/// The server's VAPID key (RFC 8292): the P-256 key that signs every Web Push request, so push
/// services know the pushes come from the server a browser subscribed to. Derived from the
/// server secret, like the other server keys: every node of a cluster has the same key, and a
/// development server's key survives restarts with no file of its own.
struct VAPIDKey: Sendable {
    let privateKey: P256.Signing.PrivateKey

    init(secret: String) {
        let master = SymmetricKey(data: Data(secret.utf8))
        var counter = 0
        while true {
            // A 32-byte string is a valid P-256 scalar unless it is zero or at least the group
            // order (odds about 2^-32); the counter moves past such a string.
            let bytes = HKDF<SHA256>.deriveKey(inputKeyMaterial: master, salt: Data("parley".utf8),
                                               info: Data("vapid-\(counter)".utf8), outputByteCount: 32)
            if let key = bytes.withUnsafeBytes({ try? P256.Signing.PrivateKey(rawRepresentation: Data($0)) }) {
                privateKey = key
                return
            }
            counter += 1
        }
    }

    /// The uncompressed public point, base64url: what browsers pass as `applicationServerKey`.
    var publicKeyBase64URL: String {
        privateKey.publicKey.x963Representation.base64URLEncodedString()
    }
}
