/// Downscaling for previews.
public enum Thumbnail: Sendable {
    /// Scales down so the longer side is at most `maxSide`, keeping the aspect ratio; never scales up; at least 1x1.
    ///
    /// Area averaging (a box filter with exact fractional coverage), done separably,
    /// on the stored sRGB values as they are (no linearisation), with alpha-weighted
    /// (premultiplied) colour so fully transparent pixels lend no colour to their neighbours.
    /// Each output side is the input side times `maxSide / longerSide`, rounded to nearest.
    /// An image already within `maxSide` (or an empty one) is returned unchanged.
    public static func make(_ image: RGBAImage, maxSide: Int) -> RGBAImage {
        let width = image.width
        let height = image.height
        let limit = max(1, maxSide)
        let longer = max(width, height)
        guard width > 0, height > 0, longer > limit else { return image }
        let outWidth = max(1, (width * limit + longer / 2) / longer)
        let outHeight = max(1, (height * limit + longer / 2) / longer)
        let pixels = image.normalizedPixels

        let columns = Spans(from: width, to: outWidth)
        let rows = Spans(from: height, to: outHeight)

        // Horizontal pass: each source row to outWidth premultiplied pixels.
        var middle = [Double](repeating: 0, count: outWidth * height * 4)
        var sourceRow = [Double](repeating: 0, count: width * 4)
        for y in 0..<height {
            var s = y * width * 4
            for x in 0..<width {
                let alpha = Double(pixels[s + 3])
                let factor = alpha / 255
                sourceRow[x * 4] = Double(pixels[s]) * factor
                sourceRow[x * 4 + 1] = Double(pixels[s + 1]) * factor
                sourceRow[x * 4 + 2] = Double(pixels[s + 2]) * factor
                sourceRow[x * 4 + 3] = alpha
                s += 4
            }
            for x in 0..<outWidth {
                var r = 0.0, g = 0.0, b = 0.0, a = 0.0
                var j = columns.starts[x] * 4
                for k in columns.ranges[x] {
                    let weight = columns.weights[k]
                    r += sourceRow[j] * weight
                    g += sourceRow[j + 1] * weight
                    b += sourceRow[j + 2] * weight
                    a += sourceRow[j + 3] * weight
                    j += 4
                }
                let m = (y * outWidth + x) * 4
                middle[m] = r
                middle[m + 1] = g
                middle[m + 2] = b
                middle[m + 3] = a
            }
        }

        // Vertical pass, then back to straight alpha.
        var out = RGBAImage(width: outWidth, height: outHeight)
        var accumulator = [Double](repeating: 0, count: outWidth * 4)
        for y in 0..<outHeight {
            for i in accumulator.indices { accumulator[i] = 0 }
            var sourceY = rows.starts[y]
            for k in rows.ranges[y] {
                let weight = rows.weights[k]
                let base = sourceY * outWidth * 4
                for i in 0..<(outWidth * 4) {
                    accumulator[i] += middle[base + i] * weight
                }
                sourceY += 1
            }
            for x in 0..<outWidth {
                let a = accumulator[x * 4 + 3]
                let o = (y * outWidth + x) * 4
                let alpha = toByte(a)
                out.pixels[o + 3] = alpha
                guard alpha > 0 else { continue }
                let unpremultiply = 255 / a
                out.pixels[o] = toByte(accumulator[x * 4] * unpremultiply)
                out.pixels[o + 1] = toByte(accumulator[x * 4 + 1] * unpremultiply)
                out.pixels[o + 2] = toByte(accumulator[x * 4 + 2] * unpremultiply)
            }
        }
        return out
    }

    @inline(__always)
    private static func toByte(_ value: Double) -> UInt8 {
        // The small epsilon keeps exact halves, computed with rounding error, rounding up.
        let rounded = (value + 1e-9).rounded()
        return UInt8(rounded <= 0 ? 0 : (rounded >= 255 ? 255 : rounded))
    }

    /// For each output index, the source indices it covers and their normalised overlap weights.
    private struct Spans {
        var starts: [Int] = []
        var ranges: [Range<Int>] = []
        var weights: [Double] = []

        init(from source: Int, to target: Int) {
            let scale = Double(source) / Double(target)
            for i in 0..<target {
                let low = Double(i) * scale
                let high = min(Double(source), Double(i + 1) * scale)
                let first = min(source - 1, Int(low))
                let last = max(first, min(source - 1, Int(high.rounded(.up)) - 1))
                let begin = weights.count
                var total = 0.0
                for j in first...last {
                    let overlap = max(0, min(high, Double(j + 1)) - max(low, Double(j)))
                    weights.append(overlap)
                    total += overlap
                }
                if total > 0 {
                    for k in begin..<weights.count { weights[k] /= total }
                } else {
                    weights[begin] = 1
                }
                starts.append(first)
                ranges.append(begin..<weights.count)
            }
        }
    }
}
