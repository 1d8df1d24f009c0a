/// Writes PNG files: 8-bit RGB when every pixel is opaque, 8-bit RGBA otherwise.
public enum PNGEncoder: Sendable {
    /// Encodes `image` as a PNG file.
    ///
    /// Each row gets the filter whose output has the smallest sum of absolute
    /// values (libpng's heuristic); the scanlines go zlib-compressed into one IDAT chunk.
    public static func encode(_ image: RGBAImage) -> [UInt8] {
        let width = image.width
        let height = image.height
        let pixels = image.normalizedPixels
        let opaque = image.isOpaque
        let channels = opaque ? 3 : 4

        let rowBytes = width * channels
        var scanlines = [UInt8](repeating: 0, count: height * (rowBytes + 1))
        var previous = [UInt8](repeating: 0, count: rowBytes)
        var current = [UInt8](repeating: 0, count: rowBytes)
        var candidate = [UInt8](repeating: 0, count: rowBytes)
        var best = [UInt8](repeating: 0, count: rowBytes)
        for y in 0..<height {
            var source = y * width * 4
            var i = 0
            for _ in 0..<width {
                for c in 0..<channels { current[i + c] = pixels[source + c] }
                i += channels
                source += 4
            }
            var bestFilter: UInt8 = 0
            var bestScore = Int.max
            for filter in UInt8(0)...4 {
                let score = apply(filter, current: current, previous: previous, stride: channels, into: &candidate)
                if score < bestScore {
                    bestScore = score
                    bestFilter = filter
                    swap(&best, &candidate)
                }
            }
            let start = y * (rowBytes + 1)
            scanlines[start] = bestFilter
            scanlines.replaceSubrange((start + 1)..<(start + 1 + rowBytes), with: best)
            swap(&previous, &current)
        }

        var out = signature
        var header: [UInt8] = []
        appendU32(&header, width)
        appendU32(&header, height)
        header += [8, opaque ? 2 : 6, 0, 0, 0]
        appendChunk(&out, "IHDR", header)
        appendChunk(&out, "IDAT", ZlibCodec.deflate(scanlines))
        appendChunk(&out, "IEND", [])
        return out
    }

    private static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Filters one row and returns the heuristic cost of the result.
    private static func apply(_ filter: UInt8, current: [UInt8], previous: [UInt8], stride: Int, into out: inout [UInt8]) -> Int {
        var score = 0
        for i in 0..<current.count {
            let left = i >= stride ? current[i - stride] : 0
            let up = previous[i]
            let upLeft = i >= stride ? previous[i - stride] : 0
            let predictor: UInt8
            switch filter {
            case 0: predictor = 0
            case 1: predictor = left
            case 2: predictor = up
            case 3: predictor = UInt8((Int(left) + Int(up)) >> 1)
            default: predictor = paeth(left, up, upLeft)
            }
            let value = current[i] &- predictor
            out[i] = value
            score += value < 128 ? Int(value) : 256 - Int(value)
        }
        return score
    }

    private static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        let p = Int(a) + Int(b) - Int(c)
        let pa = abs(p - Int(a))
        let pb = abs(p - Int(b))
        let pc = abs(p - Int(c))
        if pa <= pb && pa <= pc { return a }
        if pb <= pc { return b }
        return c
    }

    private static func appendU32(_ out: inout [UInt8], _ value: Int) {
        out += [UInt8((value >> 24) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    private static func appendChunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        appendU32(&out, data.count)
        let typeBytes = Array(type.utf8)
        out += typeBytes
        out += data
        let crc = CRC32.checksum(data, initial: CRC32.checksum(typeBytes))
        appendU32(&out, Int(crc))
    }
}
