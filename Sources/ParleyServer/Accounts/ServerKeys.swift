import Crypto
import Foundation
import JWT

/// Keys derived from the server secret, one per purpose, so a leak of one use cannot forge another.
struct ServerKeys: Sendable {
    let tokenSigning: SymmetricKey
    let csrf: SymmetricKey

    init(secret: String) {
        let master = SymmetricKey(data: Data(secret.utf8))
        func derive(_ purpose: String) -> SymmetricKey {
            HKDF<SHA256>.deriveKey(inputKeyMaterial: master, salt: Data("parley".utf8), info: Data(purpose.utf8), outputByteCount: 32)
        }
        tokenSigning = derive("access-token")
        csrf = derive("csrf")
    }
}
