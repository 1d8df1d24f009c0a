/// Entry point for decoding untrusted image bytes.
public enum ImageDecoder: Sendable {
    /// The hard upper bound on `maxPixels`: 2^28 pixels, 1 GiB of RGBA. It keeps every
    /// size computation far from integer overflow, whatever budget a caller passes.
    public static let pixelCeiling = 1 << 28

    /// Sniffs the format from the bytes (PNG, JPEG, GIF) and decodes it (GIF: the first frame; JPEG: with its EXIF orientation applied).
    ///
    /// Safe on hostile input: it never traps and always terminates; malformed or
    /// truncated data throws ``ImageError/corrupt(_:)``.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - maxPixels: The largest `width * height` accepted (never more than ``pixelCeiling``).
    ///     Larger declared sizes throw ``ImageError/tooLarge(width:height:)`` before any
    ///     pixel memory is allocated.
    /// - Returns: The image as 8-bit RGBA with straight alpha.
    public static func decode(_ bytes: [UInt8], maxPixels: Int = 24_000_000) throws(ImageError) -> RGBAImage {
        let maxPixels = min(maxPixels, pixelCeiling)
        switch ImageFormat(sniffing: bytes) {
        case .png: return try PNGDecoder.decode(bytes, maxPixels: maxPixels)
        case .jpeg: return try JPEGDecoder.decode(bytes, maxPixels: maxPixels)
        case .gif: return try GIFDecoder.decode(bytes, maxPixels: maxPixels)
        case nil: throw ImageError.unsupported("unrecognised image format")
        }
    }
}
