import Foundation

extension UUID {
    /// A new row id that sorts by when it was made: RFC 9562's version 7. The first 48 bits
    /// are the Unix time in milliseconds, the next 12 (after the version) the fraction of the
    /// millisecond (the RFC's "increased clock precision"), and the last 62 random.
    ///
    /// Rows' ids are made this way rather than with `UUID()` (version 4, all random) for two
    /// reasons. A table's index on its id then grows at its end, as a sequence would: the
    /// pages a burst of inserts dirties are a few at the end rather than one per row anywhere
    /// in the index, so the WAL checkpoint copies fewer pages and readers' caches keep more.
    /// And Foundation's `UUID()` opens, reads and closes `/dev/urandom` for every id on
    /// Linux; this takes its 64 random bits from one `getrandom` call
    /// (`SystemRandomNumberGenerator`).
    ///
    /// Not for anything that must be unguessable: an id made here tells when it was made, and
    /// holds 62 random bits, not 122. Secrets are tokens of their own (`OpaqueToken`).
    static func timeOrdered(at date: Date = Date()) -> UUID {
        let milliseconds = max(0, date.timeIntervalSince1970 * 1000)
        let whole = UInt64(milliseconds) & 0xFFFF_FFFF_FFFF
        let fraction = UInt64((milliseconds - milliseconds.rounded(.down)) * 4096) & 0xFFF
        var generator = SystemRandomNumberGenerator()
        let random: UInt64 = generator.next()
        return UUID(uuid: (
            UInt8(truncatingIfNeeded: whole >> 40), UInt8(truncatingIfNeeded: whole >> 32),
            UInt8(truncatingIfNeeded: whole >> 24), UInt8(truncatingIfNeeded: whole >> 16),
            UInt8(truncatingIfNeeded: whole >> 8), UInt8(truncatingIfNeeded: whole),
            0x70 | UInt8(truncatingIfNeeded: fraction >> 8), UInt8(truncatingIfNeeded: fraction),
            0x80 | (UInt8(truncatingIfNeeded: random >> 56) & 0x3F), UInt8(truncatingIfNeeded: random >> 48),
            UInt8(truncatingIfNeeded: random >> 40), UInt8(truncatingIfNeeded: random >> 32),
            UInt8(truncatingIfNeeded: random >> 24), UInt8(truncatingIfNeeded: random >> 16),
            UInt8(truncatingIfNeeded: random >> 8), UInt8(truncatingIfNeeded: random)
        ))
    }
}
