import Crypto
import Foundation
import JWT

/// Random opaque tokens and their stored digests.
enum OpaqueToken {
    /// 256 random bits, base64url without padding.
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64URLEncodedString()
    }

    /// The hex SHA-256 under which a token is stored (tokens are high-entropy, so no salt is needed).
    static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).hexString
    }
}
