import Crypto
import Foundation

/// Message encryption for Web Push (RFC 8291, `aes128gcm` content coding from RFC 8188): only
/// the subscribed browser can read a push; the push service sees ciphertext.
///
/// Hand-written on swift-crypto's P-256, HKDF and AES-GCM: no listed package implements it.
enum WebPushEncryption {
    enum Failure: Error, Equatable {
        case invalidSubscriptionKey
        case invalidAuthSecret
    }

    /// The record size announced in the header; one record holds the whole payload.
    static let recordSize: UInt32 = 4096

    /// Encrypts `payload` for the browser whose subscription has `p256dh` (its public key, 65
    /// bytes uncompressed) and `auth` (16 bytes). `senderKey` and `salt` are fresh per message;
    /// tests pass their own to compare with the RFC's worked example.
    static func encrypt(_ payload: [UInt8], p256dh: Data, auth: Data,
                        senderKey: P256.KeyAgreement.PrivateKey = .init(), salt: [UInt8]? = nil) throws -> [UInt8] {
        guard let receiver = try? P256.KeyAgreement.PublicKey(x963Representation: p256dh) else { throw Failure.invalidSubscriptionKey }
        guard auth.count == 16 else { throw Failure.invalidAuthSecret }
        let salt = salt ?? (0..<16).map { _ in UInt8.random(in: 0...255) }
        let senderPublic = senderKey.publicKey.x963Representation
        let shared = try senderKey.sharedSecretFromKeyAgreement(with: receiver)
        // IKM = HKDF(salt: auth, ikm: ECDH, info: "WebPush: info" 0x00 ua_public as_public, 32)
        let keyInfo = Data("WebPush: info".utf8) + [0] + receiver.x963Representation + senderPublic
        let ikm = shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: auth, sharedInfo: keyInfo, outputByteCount: 32)
        let prk = HKDF<SHA256>.extract(inputKeyMaterial: ikm, salt: salt)
        let contentKey = HKDF<SHA256>.expand(pseudoRandomKey: prk, info: Data("Content-Encoding: aes128gcm".utf8) + [0], outputByteCount: 16)
        let nonceBytes = HKDF<SHA256>.expand(pseudoRandomKey: prk, info: Data("Content-Encoding: nonce".utf8) + [0], outputByteCount: 12)
        let nonce = try nonceBytes.withUnsafeBytes { try AES.GCM.Nonce(data: Data($0)) }
        // The payload, then the delimiter of the last (and only) record, with no padding.
        let sealed = try AES.GCM.seal(Data(payload + [2]), using: contentKey, nonce: nonce)
        var body = salt
        withUnsafeBytes(of: recordSize.bigEndian) { body += $0 }
        body.append(UInt8(senderPublic.count))
        body += senderPublic
        body += sealed.ciphertext
        body += sealed.tag
        return body
    }
}
