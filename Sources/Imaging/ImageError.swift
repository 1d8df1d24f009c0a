/// Why an image could not be decoded.
public enum ImageError: Error, Equatable, Sendable {
    /// A format, or a feature of one, that this library does not decode
    /// (for example CMYK or arithmetic-coded JPEG, or bytes that are no known image).
    case unsupported(String)
    /// The data breaks the format: truncated, a bad checksum, impossible values.
    case corrupt(String)
    /// The declared size exceeds the caller's pixel budget; raised before any
    /// pixel memory is allocated.
    case tooLarge(width: Int, height: Int)
}
