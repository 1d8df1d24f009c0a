/// A decoded raster image: 8-bit RGBA samples, row-major, top row first,
/// with straight (not premultiplied) alpha.
public struct RGBAImage: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// `width * height * 4` bytes: R, G, B, A for each pixel, row after row.
    public var pixels: [UInt8]

    /// Wraps existing pixel data.
    ///
    /// - Precondition: `width` and `height` are not negative and
    ///   `pixels.count == width * height * 4`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "negative image size")
        precondition(pixels.count == width * height * 4, "pixel buffer does not match the size")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Creates an image with every pixel set to one colour (transparent black by default).
    public init(width: Int, height: Int, red: UInt8 = 0, green: UInt8 = 0, blue: UInt8 = 0, alpha: UInt8 = 0) {
        precondition(width >= 0 && height >= 0, "negative image size")
        self.width = width
        self.height = height
        if red == 0 && green == 0 && blue == 0 && alpha == 0 {
            self.pixels = [UInt8](repeating: 0, count: width * height * 4)
        } else {
            var pixels = [UInt8](repeating: 0, count: width * height * 4)
            var i = 0
            while i < pixels.count {
                pixels[i] = red
                pixels[i + 1] = green
                pixels[i + 2] = blue
                pixels[i + 3] = alpha
                i += 4
            }
            self.pixels = pixels
        }
    }

    /// Whether every pixel has alpha 255.
    public var isOpaque: Bool {
        var i = 3
        while i < pixels.count {
            if pixels[i] != 255 { return false }
            i += 4
        }
        return true
    }

    /// `pixels`, cut or zero-padded to exactly `width * height * 4` bytes.
    ///
    /// `pixels` is a public `var`, so callers can break the size invariant after
    /// construction; the encoders and scalers read through this instead of trapping.
    var normalizedPixels: [UInt8] {
        let expected = width * height * 4
        if pixels.count == expected { return pixels }
        if pixels.count > expected { return Array(pixels[0..<expected]) }
        return pixels + [UInt8](repeating: 0, count: expected - pixels.count)
    }
}
