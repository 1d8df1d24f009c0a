/// Decodes the first image of a GIF87a/GIF89a file onto its logical screen.
enum GIFDecoder {
    static func decode(_ bytes: [UInt8], maxPixels: Int) throws(ImageError) -> RGBAImage {
        var reader = ByteReader(bytes)
        let magic = Array(try reader.read(6))
        guard magic == Array("GIF87a".utf8) || magic == Array("GIF89a".utf8) else {
            throw ImageError.unsupported("not a GIF file")
        }
        let screenWidth = try reader.u16LE()
        let screenHeight = try reader.u16LE()
        let flags = try reader.u8()
        try reader.skip(2) // background colour index, pixel aspect ratio
        guard screenWidth > 0, screenHeight > 0 else { throw ImageError.corrupt("empty logical screen") }
        guard screenWidth * screenHeight <= maxPixels else {
            throw ImageError.tooLarge(width: screenWidth, height: screenHeight)
        }
        var globalTable: [UInt8]?
        if flags & 0x80 != 0 {
            globalTable = Array(try reader.read(3 << (Int(flags & 7) + 1)))
        }

        var transparentIndex: Int?
        while true {
            let introducer = try reader.u8()
            switch introducer {
            case 0x21:
                let label = try reader.u8()
                if label == 0xF9 {
                    let size = Int(try reader.u8())
                    let block = try reader.read(size)
                    if size >= 4 {
                        let start = block.startIndex
                        if block[start] & 1 != 0 { transparentIndex = Int(block[start + 3]) }
                    }
                }
                // The rest of any extension is a run of sub-blocks ending in an empty one.
                try skipSubBlocks(&reader)
            case 0x2C:
                return try decodeFrame(
                    &reader, screenWidth: screenWidth, screenHeight: screenHeight,
                    globalTable: globalTable, transparentIndex: transparentIndex, maxPixels: maxPixels
                )
            case 0x3B:
                throw ImageError.corrupt("GIF has no image")
            default:
                throw ImageError.corrupt("unknown GIF block 0x\(String(introducer, radix: 16))")
            }
        }
    }

    private static func decodeFrame(
        _ reader: inout ByteReader, screenWidth: Int, screenHeight: Int,
        globalTable: [UInt8]?, transparentIndex: Int?, maxPixels: Int
    ) throws(ImageError) -> RGBAImage {
        let left = try reader.u16LE()
        let top = try reader.u16LE()
        let width = try reader.u16LE()
        let height = try reader.u16LE()
        let flags = try reader.u8()
        guard width * height <= maxPixels else { throw ImageError.tooLarge(width: width, height: height) }
        var table = globalTable
        if flags & 0x80 != 0 {
            table = Array(try reader.read(3 << (Int(flags & 7) + 1)))
        }
        let interlaced = flags & 0x40 != 0
        let minimumCodeSize = Int(try reader.u8())
        guard (1...11).contains(minimumCodeSize) else { throw ImageError.corrupt("bad LZW code size") }

        var data: [UInt8] = []
        while true {
            let size = Int(try reader.u8())
            if size == 0 { break }
            data.append(contentsOf: try reader.read(size))
        }
        let indices = try LZWDecoder.decode(data, minimumCodeSize: minimumCodeSize, pixelCount: width * height)

        // Without any colour table the indices are shown as grey levels.
        var colors = [UInt8](repeating: 0, count: 256 * 4)
        for i in 0..<256 {
            if let table, i * 3 + 2 < table.count {
                colors[i * 4] = table[i * 3]
                colors[i * 4 + 1] = table[i * 3 + 1]
                colors[i * 4 + 2] = table[i * 3 + 2]
            } else if table == nil {
                colors[i * 4] = UInt8(i)
                colors[i * 4 + 1] = UInt8(i)
                colors[i * 4 + 2] = UInt8(i)
            }
            colors[i * 4 + 3] = i == transparentIndex ? 0 : 255
        }

        var image = RGBAImage(width: screenWidth, height: screenHeight)
        // Rows arrive in interlace order; the part outside the screen is clipped.
        let rowOrder = interlaced ? interlacedRows(height) : Array(0..<height)
        let visibleWidth = max(0, min(width, screenWidth - left))
        for (sourceRow, frameY) in rowOrder.enumerated() {
            let y = top + frameY
            guard y < screenHeight else { continue }
            var source = sourceRow * width
            var o = (y * screenWidth + left) * 4
            for _ in 0..<visibleWidth {
                let c = Int(indices[source]) * 4
                image.pixels[o] = colors[c]
                image.pixels[o + 1] = colors[c + 1]
                image.pixels[o + 2] = colors[c + 2]
                image.pixels[o + 3] = colors[c + 3]
                source += 1
                o += 4
            }
        }
        return image
    }

    /// Frame rows in the order an interlaced GIF stores them: every 8th from 0, every 8th from 4,
    /// every 4th from 2, every 2nd from 1.
    private static func interlacedRows(_ height: Int) -> [Int] {
        var rows: [Int] = []
        rows.reserveCapacity(height)
        for (start, step) in [(0, 8), (4, 8), (2, 4), (1, 2)] {
            rows.append(contentsOf: stride(from: start, to: height, by: step))
        }
        return rows
    }

    private static func skipSubBlocks(_ reader: inout ByteReader) throws(ImageError) {
        while true {
            let size = Int(try reader.u8())
            if size == 0 { return }
            try reader.skip(size)
        }
    }
}
