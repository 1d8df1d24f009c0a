/// Why a model file could not be read.
public enum ModelFileError: Error, Equatable, Sendable {
    /// The file does not start with the model-file magic bytes.
    case notAModelFile
    /// The file was written by a newer (or unknown) format version.
    case unsupportedVersion(found: UInt32, newestSupported: UInt32)
    /// The payload's CRC-32 does not match the header: the file is damaged.
    case checksumMismatch(expected: UInt32, actual: UInt32)
    /// The file ends before the header or the declared payload does.
    case truncated
    /// The checksum matched but the payload is not a valid model; the message says why.
    case invalidPayload(String)
}
