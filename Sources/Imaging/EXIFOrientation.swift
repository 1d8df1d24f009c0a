/// Reads the EXIF orientation tag (0x0112) from a JPEG APP1 segment and applies it,
/// so the decoded pixels appear the way the camera meant them to be viewed.
enum EXIFOrientation {
    /// The orientation, 1...8, from the body of an APP1 segment; nil when absent or unreadable.
    static func parse(_ segment: [UInt8]) -> Int? {
        let header: [UInt8] = Array("Exif".utf8) + [0, 0]
        guard segment.count > header.count + 8, segment.starts(with: header) else { return nil }
        let tiff = Array(segment[header.count...])
        let littleEndian: Bool
        switch (tiff[0], tiff[1]) {
        case (0x49, 0x49): littleEndian = true
        case (0x4D, 0x4D): littleEndian = false
        default: return nil
        }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= tiff.count else { return nil }
            let a = Int(tiff[at]), b = Int(tiff[at + 1])
            return littleEndian ? a | b << 8 : a << 8 | b
        }
        func u32(_ at: Int) -> Int? {
            guard let first = u16(at), let second = u16(at + 2) else { return nil }
            return littleEndian ? first | second << 16 : first << 16 | second
        }
        guard u16(2) == 42, let ifd = u32(4), let entries = u16(ifd) else { return nil }
        for i in 0..<entries {
            let entry = ifd + 2 + i * 12
            guard let tag = u16(entry), let type = u16(entry + 2) else { return nil }
            guard tag == 0x0112 else { continue }
            let value: Int?
            switch type {
            case 3: value = u16(entry + 8)
            case 4: value = u32(entry + 8)
            default: value = nil
            }
            if let value, (1...8).contains(value) { return value }
            return nil
        }
        return nil
    }

    /// Returns `image` transformed for `orientation` (1 and unknown values leave it as it is).
    static func apply(_ orientation: Int, to image: RGBAImage) -> RGBAImage {
        guard (2...8).contains(orientation) else { return image }
        let w = image.width
        let h = image.height
        let swaps = orientation >= 5
        let outWidth = swaps ? h : w
        let outHeight = swaps ? w : h
        var out = RGBAImage(width: outWidth, height: outHeight)
        for y in 0..<outHeight {
            for x in 0..<outWidth {
                let (sx, sy): (Int, Int)
                switch orientation {
                case 2: (sx, sy) = (w - 1 - x, y)              // mirrored
                case 3: (sx, sy) = (w - 1 - x, h - 1 - y)      // rotated 180°
                case 4: (sx, sy) = (x, h - 1 - y)              // flipped
                case 5: (sx, sy) = (y, x)                      // transposed
                case 6: (sx, sy) = (y, h - 1 - x)              // rotated 90° clockwise
                case 7: (sx, sy) = (w - 1 - y, h - 1 - x)      // transversed
                default: (sx, sy) = (w - 1 - y, x)             // 8: rotated 90° counter-clockwise
                }
                let s = (sy * w + sx) * 4
                let d = (y * outWidth + x) * 4
                out.pixels[d] = image.pixels[s]
                out.pixels[d + 1] = image.pixels[s + 1]
                out.pixels[d + 2] = image.pixels[s + 2]
                out.pixels[d + 3] = image.pixels[s + 3]
            }
        }
        return out
    }
}
