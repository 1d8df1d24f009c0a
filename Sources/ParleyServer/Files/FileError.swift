import Foundation

/// What the Files feature refuses, mapped to problem+json in `ProblemMapping`.
enum FileError: Error, Equatable, Sendable {
    /// No such upload, or one the caller may not see (the same answer, so ids leak nothing).
    case notFound
    /// The body is larger than the configured limit (bytes).
    case tooLarge(limit: Int)
    /// The bytes are of a type the server does not accept.
    case typeNotAllowed(sniffed: String, allowed: [String])
    case empty
    /// Only the uploader may delete an upload, and only while no message carries it.
    case attached
    /// The picture has no thumbnail (a type or an encoding Parley cannot decode).
    case noThumbnail
}
