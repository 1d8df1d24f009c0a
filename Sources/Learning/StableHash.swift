/// FNV-1a 64-bit hashing, stable across processes and platforms.
///
/// Swift's `hashValue` is randomly seeded per process, so it cannot be used for
/// feature hashing whose buckets must match between training and serving.
public struct StableHash: Sendable, Equatable {
    /// The FNV-1a 64-bit offset basis.
    public static let offsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325
    /// The FNV-1a 64-bit prime.
    public static let prime: UInt64 = 0x0000_0100_0000_01B3

    /// The running hash value.
    public private(set) var value: UInt64 = StableHash.offsetBasis

    /// Creates a hasher at the offset basis.
    public init() {}

    /// Mixes one byte into the hash.
    public mutating func combine(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* StableHash.prime
    }

    /// Mixes the UTF-8 bytes of `string` into the hash.
    public mutating func combine(_ string: String) {
        var copy = string
        copy.withUTF8 { buffer in
            for byte in buffer { value = (value ^ UInt64(byte)) &* StableHash.prime }
        }
    }

    /// The FNV-1a 64 hash of the UTF-8 bytes of `string`.
    public static func fnv1a64(_ string: String) -> UInt64 {
        var hasher = StableHash()
        hasher.combine(string)
        return hasher.value
    }
}
