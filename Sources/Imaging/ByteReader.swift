/// A cursor over untrusted bytes whose every read is bounds-checked, so that a
/// truncated file becomes `ImageError.corrupt` instead of a trap.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = max(0, min(offset, bytes.count))
    }

    var remaining: Int { bytes.count - offset }
    var isAtEnd: Bool { offset >= bytes.count }

    mutating func u8() throws(ImageError) -> UInt8 {
        guard offset < bytes.count else { throw ImageError.corrupt("unexpected end of data") }
        let value = bytes[offset]
        offset += 1
        return value
    }

    mutating func u16BE() throws(ImageError) -> Int {
        try need(2)
        let value = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
        offset += 2
        return value
    }

    mutating func u16LE() throws(ImageError) -> Int {
        try need(2)
        let value = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8
        offset += 2
        return value
    }

    mutating func u32BE() throws(ImageError) -> Int {
        try need(4)
        var value = 0
        for i in 0..<4 { value = value << 8 | Int(bytes[offset + i]) }
        offset += 4
        return value
    }

    mutating func skip(_ count: Int) throws(ImageError) {
        try need(count)
        offset += count
    }

    /// Returns the next `count` bytes as a slice (indices stay those of `bytes`).
    mutating func read(_ count: Int) throws(ImageError) -> ArraySlice<UInt8> {
        try need(count)
        let slice = bytes[offset..<(offset + count)]
        offset += count
        return slice
    }

    mutating func seek(to newOffset: Int) throws(ImageError) {
        guard newOffset >= 0 && newOffset <= bytes.count else {
            throw ImageError.corrupt("offset out of range")
        }
        offset = newOffset
    }

    private func need(_ count: Int) throws(ImageError) {
        guard count >= 0, count <= bytes.count - offset else {
            throw ImageError.corrupt("unexpected end of data")
        }
    }
}
