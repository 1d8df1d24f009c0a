/// A small, fast, seedable random number generator (SplitMix64).
///
/// The standard library's generators are not seedable, and its shuffling algorithm is
/// not guaranteed to stay the same between releases, so everything that must be
/// reproducible for a seed goes through this type and ``shuffle(_:)``.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator whose output depends only on `seed`.
    public init(seed: UInt64) {
        state = seed
    }

    /// Returns the next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<upperBound`; `upperBound` must be positive.
    public mutating func nextInt(below upperBound: Int) -> Int {
        // Lemire's multiply-shift: unbiased enough for sampling and identical on every platform.
        let product = next().multipliedFullWidth(by: UInt64(upperBound))
        return Int(product.high)
    }

    /// A uniform double in `[0, 1)`.
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Fisher–Yates shuffle that depends only on the generator's state.
    public mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            let j = nextInt(below: i + 1)
            array.swapAt(i, j)
        }
    }
}
