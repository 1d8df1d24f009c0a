/// Decodes PNG: every colour type and bit depth, all five filters, Adam7,
/// PLTE and tRNS, IDAT split over any number of chunks. Every chunk CRC is verified.
enum PNGDecoder {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// (x0, y0, dx, dy) of the seven Adam7 passes.
    private static let adam7: [(Int, Int, Int, Int)] = [
        (0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2),
    ]

    struct Header {
        var width: Int
        var height: Int
        var bitDepth: Int
        var colorType: Int
        var interlaced: Bool

        var channels: Int {
            switch colorType {
            case 2: return 3
            case 4: return 2
            case 6: return 4
            default: return 1
            }
        }

        var bitsPerPixel: Int { channels * bitDepth }
        /// Filter stride: bytes per complete pixel, at least one.
        var filterStride: Int { max(1, bitsPerPixel / 8) }

        func rowBytes(_ pixels: Int) -> Int { (pixels * bitsPerPixel + 7) / 8 }
    }

    struct Pass {
        var x0: Int, y0: Int, dx: Int, dy: Int
        var width: Int, height: Int
        var offset: Int
        var rowBytes: Int
    }

    static func decode(_ bytes: [UInt8], maxPixels: Int) throws(ImageError) -> RGBAImage {
        var reader = ByteReader(bytes)
        guard bytes.count >= signature.count, bytes[0..<signature.count].elementsEqual(signature) else {
            throw ImageError.unsupported("not a PNG file")
        }
        try reader.skip(signature.count)

        var header: Header?
        var palette: [UInt8] = []
        var transparency: [UInt8]?
        var compressed: [UInt8] = []
        var sawIDAT = false

        chunks: while !reader.isAtEnd {
            let length = try reader.u32BE()
            guard length <= 0x7FFF_FFFF else { throw ImageError.corrupt("chunk length out of range") }
            let typeStart = reader.offset
            let type = Array(try reader.read(4))
            let data = try reader.read(length)
            let storedCRC = try reader.u32BE()
            guard type.allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
                throw ImageError.corrupt("invalid chunk type")
            }
            let name = String(decoding: type, as: UTF8.self)
            guard UInt32(storedCRC) == CRC32.checksum(bytes[typeStart..<(typeStart + 4 + length)]) else {
                throw ImageError.corrupt("bad CRC in \(name) chunk")
            }
            if header == nil && name != "IHDR" {
                throw ImageError.corrupt("IHDR is not the first chunk")
            }
            switch name {
            case "IHDR":
                guard header == nil else { throw ImageError.corrupt("second IHDR chunk") }
                header = try parseHeader(data, maxPixels: maxPixels)
            case "PLTE":
                guard length % 3 == 0, length >= 3, length <= 768 else {
                    throw ImageError.corrupt("bad PLTE length")
                }
                palette = Array(data)
            case "tRNS":
                transparency = Array(data)
            case "IDAT":
                sawIDAT = true
                compressed.append(contentsOf: data)
            case "IEND":
                break chunks
            default:
                // Bit 5 of the first letter clear marks a chunk needed to render the image.
                if type[0] & 0x20 == 0 {
                    throw ImageError.unsupported("unknown critical PNG chunk \(name)")
                }
            }
        }

        guard let header else { throw ImageError.corrupt("missing IHDR chunk") }
        guard sawIDAT else { throw ImageError.corrupt("missing IDAT chunk") }
        if header.colorType == 3 && palette.isEmpty {
            throw ImageError.corrupt("palette image without PLTE chunk")
        }

        let (passes, rawSize) = try layout(header)
        var raw = try ZlibCodec.inflate(compressed, expectedSize: rawSize)
        for pass in passes {
            try unfilter(&raw, pass: pass, stride: header.filterStride)
        }

        var output = RGBAImage(width: header.width, height: header.height)
        let converter = PNGPixelConverter(header: header, palette: palette, transparency: transparency)
        for pass in passes {
            converter.convert(raw, pass: pass, into: &output.pixels, imageWidth: header.width)
        }
        return output
    }

    private static func parseHeader(_ data: ArraySlice<UInt8>, maxPixels: Int) throws(ImageError) -> Header {
        guard data.count == 13 else { throw ImageError.corrupt("bad IHDR length") }
        var reader = ByteReader(Array(data))
        let width = try reader.u32BE()
        let height = try reader.u32BE()
        let bitDepth = Int(try reader.u8())
        let colorType = Int(try reader.u8())
        let compression = try reader.u8()
        let filter = try reader.u8()
        let interlace = try reader.u8()
        guard width > 0, height > 0, width <= 0x7FFF_FFFF, height <= 0x7FFF_FFFF else {
            throw ImageError.corrupt("bad image size \(width)x\(height)")
        }
        let allowedDepths: [Int]
        switch colorType {
        case 0: allowedDepths = [1, 2, 4, 8, 16]
        case 3: allowedDepths = [1, 2, 4, 8]
        case 2, 4, 6: allowedDepths = [8, 16]
        default: throw ImageError.corrupt("bad colour type \(colorType)")
        }
        guard allowedDepths.contains(bitDepth) else {
            throw ImageError.corrupt("bad bit depth \(bitDepth) for colour type \(colorType)")
        }
        guard compression == 0, filter == 0, interlace <= 1 else {
            throw ImageError.unsupported("unknown PNG compression, filter or interlace method")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= maxPixels else { throw ImageError.tooLarge(width: width, height: height) }
        return Header(width: width, height: height, bitDepth: bitDepth, colorType: colorType, interlaced: interlace == 1)
    }

    /// Where each pass lives in the inflated stream, and how long that stream must be.
    private static func layout(_ header: Header) throws(ImageError) -> ([Pass], Int) {
        let geometry = header.interlaced ? adam7 : [(0, 0, 1, 1)]
        var passes: [Pass] = []
        var total = 0
        for (x0, y0, dx, dy) in geometry {
            let width = header.width > x0 ? (header.width - x0 + dx - 1) / dx : 0
            let height = header.height > y0 ? (header.height - y0 + dy - 1) / dy : 0
            guard width > 0 && height > 0 else { continue }
            let rowBytes = header.rowBytes(width)
            let (size, overflow) = height.multipliedReportingOverflow(by: rowBytes + 1)
            guard !overflow, total <= Int.max - size else {
                throw ImageError.tooLarge(width: header.width, height: header.height)
            }
            passes.append(Pass(x0: x0, y0: y0, dx: dx, dy: dy, width: width, height: height, offset: total, rowBytes: rowBytes))
            total += size
        }
        return (passes, total)
    }

    /// Reverses the per-row filters in place; each row keeps its leading filter-type byte.
    private static func unfilter(_ raw: inout [UInt8], pass: Pass, stride: Int) throws(ImageError) {
        let rowBytes = pass.rowBytes
        var rowStart = pass.offset
        var prior = -1
        for _ in 0..<pass.height {
            let filter = raw[rowStart]
            let current = rowStart + 1
            switch filter {
            case 0:
                break
            case 1:
                if rowBytes > stride {
                    for i in stride..<rowBytes {
                        raw[current + i] = raw[current + i] &+ raw[current + i - stride]
                    }
                }
            case 2:
                if prior >= 0 {
                    for i in 0..<rowBytes {
                        raw[current + i] = raw[current + i] &+ raw[prior + i]
                    }
                }
            case 3:
                for i in 0..<rowBytes {
                    let left = i >= stride ? Int(raw[current + i - stride]) : 0
                    let up = prior >= 0 ? Int(raw[prior + i]) : 0
                    raw[current + i] = raw[current + i] &+ UInt8((left + up) >> 1)
                }
            case 4:
                for i in 0..<rowBytes {
                    let left = i >= stride ? Int(raw[current + i - stride]) : 0
                    let up = prior >= 0 ? Int(raw[prior + i]) : 0
                    let upLeft = (i >= stride && prior >= 0) ? Int(raw[prior + i - stride]) : 0
                    raw[current + i] = raw[current + i] &+ UInt8(paeth(left, up, upLeft))
                }
            default:
                throw ImageError.corrupt("unknown PNG filter type \(filter)")
            }
            prior = current
            rowStart = current + rowBytes
        }
    }

    @inline(__always)
    private static func paeth(_ a: Int, _ b: Int, _ c: Int) -> Int {
        let p = a + b - c
        let pa = abs(p - a)
        let pb = abs(p - b)
        let pc = abs(p - c)
        if pa <= pb && pa <= pc { return a }
        if pb <= pc { return b }
        return c
    }
}
