/// A canonical Huffman decoding table from a DHT segment.
struct JPEGHuffmanTable {
    private static let fastBits = 9
    /// Indexed by the next 9 bits: `length << 8 | symbol`, or 0 when the code is longer.
    private var fast: [UInt16]
    /// Largest code of each length 0...16, left-aligned to 16 bits, or -1 when there is none.
    private var maxCode: [Int]
    /// For each length, symbol index = code + valueOffset.
    private var valueOffset: [Int]
    private var symbols: [UInt8]

    init(counts: [Int], symbols: [UInt8]) throws(ImageError) {
        guard counts.count == 16, counts.reduce(0, +) == symbols.count, symbols.count <= 256 else {
            throw ImageError.corrupt("bad Huffman table")
        }
        self.symbols = symbols
        fast = [UInt16](repeating: 0, count: 1 << Self.fastBits)
        maxCode = [Int](repeating: -1, count: 18)
        valueOffset = [Int](repeating: 0, count: 18)
        var code = 0
        var index = 0
        for length in 1...16 {
            let n = counts[length - 1]
            valueOffset[length] = index - code
            for _ in 0..<n {
                // Codes of one length must fit in that many bits.
                guard code < 1 << length else { throw ImageError.corrupt("bad Huffman table") }
                if length <= Self.fastBits {
                    let shift = Self.fastBits - length
                    let entry = UInt16(length << 8) | UInt16(symbols[index])
                    for j in (code << shift)..<((code + 1) << shift) { fast[j] = entry }
                }
                code += 1
                index += 1
            }
            if n > 0 { maxCode[length] = (code - 1) << (16 - length) | ((1 << (16 - length)) - 1) }
            code <<= 1
        }
        maxCode[17] = Int.max
    }

    /// Decodes one symbol.
    @inline(__always)
    func decode(_ reader: inout JPEGBitReader) throws(ImageError) -> Int {
        let look = reader.peek16()
        let entry = fast[look >> (16 - Self.fastBits)]
        if entry != 0 {
            reader.consume(Int(entry >> 8))
            return Int(entry & 0xFF)
        }
        var length = Self.fastBits + 1
        while length <= 16 && look > maxCode[length] { length += 1 }
        guard length <= 16 else { throw ImageError.corrupt("bad Huffman code") }
        reader.consume(length)
        let index = (look >> (16 - length)) + valueOffset[length]
        guard index >= 0 && index < symbols.count else { throw ImageError.corrupt("bad Huffman code") }
        return Int(symbols[index])
    }
}
