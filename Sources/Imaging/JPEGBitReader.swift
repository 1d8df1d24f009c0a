/// Reads the entropy-coded segment of a JPEG scan, most significant bit first,
/// removing the 0x00 stuffed after each 0xFF data byte.
///
/// At a marker, or at the end of the file, it supplies zero bits (as libjpeg
/// does) and counts them, so the decoder can tell a short, damaged scan from
/// the few bits of look-ahead every scan ends with.
struct JPEGBitReader {
    let data: [UInt8]
    /// Index of the next byte not yet taken into `buffer`.
    var position: Int
    /// Bits not yet consumed, aligned to the most significant end.
    private var buffer: UInt64 = 0
    private var count = 0
    private var paddingBytes = 0

    init(data: [UInt8], position: Int) {
        self.data = data
        self.position = position
    }

    /// Bits consumed beyond the real data of the segment.
    var overrunBits: Int { paddingBytes * 8 - count }

    /// Drops buffered bits; used at restart markers, where the stream realigns to a byte.
    mutating func reset() {
        buffer = 0
        count = 0
        paddingBytes = 0
    }

    @inline(__always)
    private mutating func fill() {
        while count <= 56 {
            var byte: UInt8 = 0
            if position < data.count {
                let value = data[position]
                if value != 0xFF {
                    byte = value
                    position += 1
                } else if position + 1 < data.count && data[position + 1] == 0 {
                    byte = 0xFF
                    position += 2
                } else {
                    paddingBytes += 1
                }
            } else {
                paddingBytes += 1
            }
            buffer |= UInt64(byte) &<< UInt64(56 - count)
            count += 8
        }
    }

    /// The next 16 bits without consuming them.
    @inline(__always)
    mutating func peek16() -> Int {
        if count < 16 { fill() }
        return Int(truncatingIfNeeded: buffer &>> 48)
    }

    /// Consumes `n` (at most 16) bits already seen through `peek16`.
    @inline(__always)
    mutating func consume(_ n: Int) {
        buffer = buffer &<< UInt64(n)
        count -= n
    }

    /// Reads `n` bits, 0...16, as an unsigned number.
    @inline(__always)
    mutating func bits(_ n: Int) -> Int {
        guard n > 0 else { return 0 }
        if count < n { fill() }
        let value = Int(truncatingIfNeeded: buffer &>> UInt64(64 - n))
        consume(n)
        return value
    }

    @inline(__always)
    mutating func bit() -> Int {
        bits(1)
    }

    /// Reads an `n`-bit magnitude category value and sign-extends it (JPEG's EXTEND).
    @inline(__always)
    mutating func receiveExtend(_ n: Int) -> Int {
        guard n > 0 else { return 0 }
        let value = bits(n)
        return value < (1 << (n - 1)) ? value - (1 << n) + 1 : value
    }
}
