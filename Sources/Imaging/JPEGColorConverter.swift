/// Upsamples JPEG component planes to full resolution and converts them to RGBA,
/// with libjpeg's integer arithmetic and its default "fancy" (triangle-filter)
/// upsampling, so results agree with libjpeg-based decoders.
enum JPEGColorConverter {
    enum Transform {
        case gray
        case yCbCr
        case rgb
    }

    private static let scaleBits = 16
    private static let half = 1 << 15

    private static func fix(_ x: Double) -> Int { Int(x * 65536 + 0.5) }

    private static let crToR: [Int] = (0..<256).map { (fix(1.40200) * ($0 - 128) + half) >> scaleBits }
    private static let cbToB: [Int] = (0..<256).map { (fix(1.77200) * ($0 - 128) + half) >> scaleBits }
    private static let crToG: [Int] = (0..<256).map { -fix(0.71414) * ($0 - 128) }
    private static let cbToG: [Int] = (0..<256).map { -fix(0.34414) * ($0 - 128) + half }

    static func convert(frame: JPEGDecoder.Frame, planes: [[UInt8]], transform: Transform) -> RGBAImage {
        let width = frame.width
        let height = frame.height
        var image = RGBAImage(width: width, height: height)
        var full: [[UInt8]] = []
        for (component, plane) in zip(frame.components, planes) {
            full.append(upsample(plane, component: component, frame: frame))
        }
        let count = width * height
        switch transform {
        case .gray:
            let g = full[0]
            for i in 0..<count {
                let v = g[i]
                image.pixels[i * 4] = v
                image.pixels[i * 4 + 1] = v
                image.pixels[i * 4 + 2] = v
                image.pixels[i * 4 + 3] = 255
            }
        case .rgb:
            let (r, g, b) = (full[0], full[1], full[2])
            for i in 0..<count {
                image.pixels[i * 4] = r[i]
                image.pixels[i * 4 + 1] = g[i]
                image.pixels[i * 4 + 2] = b[i]
                image.pixels[i * 4 + 3] = 255
            }
        case .yCbCr:
            let (yPlane, cbPlane, crPlane) = (full[0], full[1], full[2])
            let crToR = Self.crToR, cbToB = Self.cbToB, crToG = Self.crToG, cbToG = Self.cbToG
            for i in 0..<count {
                let y = Int(yPlane[i])
                let cb = Int(cbPlane[i])
                let cr = Int(crPlane[i])
                image.pixels[i * 4] = clamp(y + crToR[cr])
                image.pixels[i * 4 + 1] = clamp(y + ((cbToG[cb] + crToG[cr]) >> scaleBits))
                image.pixels[i * 4 + 2] = clamp(y + cbToB[cb])
                image.pixels[i * 4 + 3] = 255
            }
        }
        return image
    }

    @inline(__always)
    private static func clamp(_ value: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: value < 0 ? 0 : (value > 255 ? 255 : value))
    }

    /// One component brought to `frame.width` x `frame.height` samples.
    private static func upsample(_ plane: [UInt8], component c: JPEGDecoder.Component, frame: JPEGDecoder.Frame) -> [UInt8] {
        let width = frame.width
        let height = frame.height
        let hs = frame.maxH / c.h
        let vs = frame.maxV / c.v
        let stride = c.blocksPerLine * 8
        let lastRow = c.height - 1
        let n = c.width
        var out = [UInt8](repeating: 0, count: width * height)

        if hs == 1 && vs == 1 {
            for y in 0..<height {
                out.replaceSubrange((y * width)..<(y * width + width), with: plane[(y * stride)..<(y * stride + width)])
            }
        } else if hs == 2 && vs == 1 && n > 2 {
            var row = [UInt8](repeating: 0, count: 2 * n)
            for y in 0..<height {
                let base = min(y, lastRow) * stride
                row[0] = plane[base]
                row[1] = UInt8((Int(plane[base]) * 3 + Int(plane[base + 1]) + 2) >> 2)
                for i in 1..<(n - 1) {
                    let center = Int(plane[base + i]) * 3
                    row[2 * i] = UInt8((center + Int(plane[base + i - 1]) + 1) >> 2)
                    row[2 * i + 1] = UInt8((center + Int(plane[base + i + 1]) + 2) >> 2)
                }
                row[2 * n - 2] = UInt8((Int(plane[base + n - 1]) * 3 + Int(plane[base + n - 2]) + 1) >> 2)
                row[2 * n - 1] = plane[base + n - 1]
                out.replaceSubrange((y * width)..<(y * width + width), with: row[0..<width])
            }
        } else if hs == 1 && vs == 2 {
            for y in 0..<height {
                let inRow = min(y / 2, lastRow)
                let upper = y % 2 == 0
                let other = max(0, min(upper ? inRow - 1 : inRow + 1, lastRow))
                let bias = upper ? 1 : 2
                let a = inRow * stride
                let b = other * stride
                for x in 0..<width {
                    out[y * width + x] = UInt8((Int(plane[a + x]) * 3 + Int(plane[b + x]) + bias) >> 2)
                }
            }
        } else if hs == 2 && vs == 2 && n > 2 {
            var sums = [Int](repeating: 0, count: n)
            var row = [UInt8](repeating: 0, count: 2 * n)
            for y in 0..<height {
                let inRow = min(y / 2, lastRow)
                let other = max(0, min(y % 2 == 0 ? inRow - 1 : inRow + 1, lastRow))
                let a = inRow * stride
                let b = other * stride
                for i in 0..<n { sums[i] = Int(plane[a + i]) * 3 + Int(plane[b + i]) }
                row[0] = UInt8((sums[0] * 4 + 8) >> 4)
                row[1] = UInt8((sums[0] * 3 + sums[1] + 7) >> 4)
                for i in 1..<(n - 1) {
                    row[2 * i] = UInt8((sums[i] * 3 + sums[i - 1] + 8) >> 4)
                    row[2 * i + 1] = UInt8((sums[i] * 3 + sums[i + 1] + 7) >> 4)
                }
                row[2 * n - 2] = UInt8((sums[n - 1] * 3 + sums[n - 2] + 8) >> 4)
                row[2 * n - 1] = UInt8((sums[n - 1] * 4 + 7) >> 4)
                out.replaceSubrange((y * width)..<(y * width + width), with: row[0..<width])
            }
        } else {
            // Any other integral ratio: plain replication, as libjpeg's int_upsample.
            for y in 0..<height {
                let base = min(y / vs, lastRow) * stride
                for x in 0..<width {
                    out[y * width + x] = plane[base + min(x / hs, n - 1)]
                }
            }
        }
        return out
    }
}
