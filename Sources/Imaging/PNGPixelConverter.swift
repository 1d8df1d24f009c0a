/// Expands unfiltered PNG scanlines of any colour type and bit depth to RGBA8,
/// applying the palette and tRNS transparency.
struct PNGPixelConverter {
    private let colorType: Int
    private let bitDepth: Int
    private let channels: Int
    /// 256 RGBA entries; indices the PLTE does not define read as opaque black.
    private let palette: [UInt8]
    /// tRNS colour key in full sample precision, one value per channel.
    private let key: [Int]?

    init(header: PNGDecoder.Header, palette plte: [UInt8], transparency: [UInt8]?) {
        colorType = header.colorType
        bitDepth = header.bitDepth
        channels = header.channels
        var table = [UInt8](repeating: 0, count: 256 * 4)
        for i in 0..<256 {
            table[i * 4 + 3] = 255
            if i * 3 + 2 < plte.count {
                table[i * 4] = plte[i * 3]
                table[i * 4 + 1] = plte[i * 3 + 1]
                table[i * 4 + 2] = plte[i * 3 + 2]
            }
        }
        var key: [Int]?
        if let trns = transparency {
            switch header.colorType {
            case 3:
                for (i, alpha) in trns.prefix(256).enumerated() { table[i * 4 + 3] = alpha }
            case 0 where trns.count >= 2:
                key = [Int(trns[0]) << 8 | Int(trns[1])]
            case 2 where trns.count >= 6:
                key = [
                    Int(trns[0]) << 8 | Int(trns[1]),
                    Int(trns[2]) << 8 | Int(trns[3]),
                    Int(trns[4]) << 8 | Int(trns[5]),
                ]
            default:
                break // not allowed for colour types with an alpha channel
            }
        }
        self.palette = table
        self.key = key
    }

    func convert(_ raw: [UInt8], pass: PNGDecoder.Pass, into out: inout [UInt8], imageWidth: Int) {
        let outStep = pass.dx * 4
        for py in 0..<pass.height {
            let row = pass.offset + py * (pass.rowBytes + 1) + 1
            let y = pass.y0 + py * pass.dy
            let start = (y * imageWidth + pass.x0) * 4
            if bitDepth == 8 && colorType == 6 && pass.dx == 1 {
                let count = pass.width * 4
                out.replaceSubrange(start..<(start + count), with: raw[row..<(row + count)])
            } else if bitDepth == 8 && colorType == 2 {
                var o = start
                var i = row
                for _ in 0..<pass.width {
                    let r = raw[i], g = raw[i + 1], b = raw[i + 2]
                    out[o] = r
                    out[o + 1] = g
                    out[o + 2] = b
                    if let key, Int(r) == key[0], Int(g) == key[1], Int(b) == key[2] {
                        out[o + 3] = 0
                    } else {
                        out[o + 3] = 255
                    }
                    o += outStep
                    i += 3
                }
            } else {
                convertGeneric(raw, row: row, width: pass.width, into: &out, start: start, step: outStep)
            }
        }
    }

    private func convertGeneric(_ raw: [UInt8], row: Int, width: Int, into out: inout [UInt8], start: Int, step: Int) {
        let scale = bitDepth < 8 ? 255 / ((1 << bitDepth) - 1) : 1
        var o = start
        for x in 0..<width {
            let base = x * channels
            switch colorType {
            case 0:
                let value = sample(raw, row: row, index: base)
                let gray = UInt8(truncatingIfNeeded: bitDepth == 16 ? value >> 8 : value * scale)
                out[o] = gray
                out[o + 1] = gray
                out[o + 2] = gray
                out[o + 3] = (key?[0] == value) ? 0 : 255
            case 2:
                let r = sample(raw, row: row, index: base)
                let g = sample(raw, row: row, index: base + 1)
                let b = sample(raw, row: row, index: base + 2)
                out[o] = eight(r)
                out[o + 1] = eight(g)
                out[o + 2] = eight(b)
                if let key, r == key[0], g == key[1], b == key[2] {
                    out[o + 3] = 0
                } else {
                    out[o + 3] = 255
                }
            case 3:
                let p = sample(raw, row: row, index: base) * 4
                out[o] = palette[p]
                out[o + 1] = palette[p + 1]
                out[o + 2] = palette[p + 2]
                out[o + 3] = palette[p + 3]
            case 4:
                let gray = eight(sample(raw, row: row, index: base))
                out[o] = gray
                out[o + 1] = gray
                out[o + 2] = gray
                out[o + 3] = eight(sample(raw, row: row, index: base + 1))
            default:
                out[o] = eight(sample(raw, row: row, index: base))
                out[o + 1] = eight(sample(raw, row: row, index: base + 1))
                out[o + 2] = eight(sample(raw, row: row, index: base + 2))
                out[o + 3] = eight(sample(raw, row: row, index: base + 3))
            }
            o += step
        }
    }

    /// Reduces an 8- or 16-bit sample to 8 bits (16-bit keeps its high byte, as libpng's strip does).
    @inline(__always)
    private func eight(_ value: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: bitDepth == 16 ? value >> 8 : value)
    }

    /// The `index`-th sample of a scanline, in its own precision.
    @inline(__always)
    private func sample(_ raw: [UInt8], row: Int, index: Int) -> Int {
        switch bitDepth {
        case 16:
            return Int(raw[row + index * 2]) << 8 | Int(raw[row + index * 2 + 1])
        case 8:
            return Int(raw[row + index])
        default:
            let bit = index * bitDepth
            let shift = 8 - bitDepth - (bit & 7)
            return Int(raw[row + (bit >> 3)] >> UInt8(shift)) & ((1 << bitDepth) - 1)
        }
    }
}
