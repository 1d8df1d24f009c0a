import Foundation

/// The on-disk format of a ``TextClassifier``.
///
/// Layout (integers little-endian):
/// ```
/// 0   8 bytes  magic "PRLYMODL"
/// 8   UInt32   format version
/// 12  UInt64   payload length in bytes
/// 20  UInt32   CRC-32 of the payload
/// 24  payload  JSON of the classifier (sorted keys)
/// ```
/// The version is checked before the checksum so that a newer file reports
/// ``ModelFileError/unsupportedVersion(found:newestSupported:)`` rather than looking damaged.
public enum ModelFile {
    /// The first eight bytes of every model file.
    public static let magic: [UInt8] = Array("PRLYMODL".utf8)
    /// The format version this library writes and the newest it reads.
    public static let currentVersion: UInt32 = 1
    /// Bytes before the payload.
    public static let headerSize = 24

    /// Serialises `classifier`.
    /// - Throws: `EncodingError` if the model holds a non-finite number.
    public static func encode(_ classifier: TextClassifier) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let payload = try encoder.encode(classifier)
        var data = Data(magic)
        append(currentVersion, to: &data)
        append(UInt64(payload.count), to: &data)
        append(CRC32.checksum(payload), to: &data)
        data.append(payload)
        return data
    }

    /// Reads a classifier written by ``encode(_:)``.
    /// - Throws: ``ModelFileError``.
    public static func decode(_ data: Data) throws -> TextClassifier {
        let bytes = [UInt8](data)
        guard bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic else { throw ModelFileError.notAModelFile }
        guard bytes.count >= headerSize else { throw ModelFileError.truncated }
        let version = UInt32(truncatingIfNeeded: readInteger(bytes, at: 8, width: 4))
        guard version >= 1, version <= currentVersion else {
            throw ModelFileError.unsupportedVersion(found: version, newestSupported: currentVersion)
        }
        let length = readInteger(bytes, at: 12, width: 8)
        let expected = UInt32(truncatingIfNeeded: readInteger(bytes, at: 20, width: 4))
        let available = UInt64(bytes.count - headerSize)
        guard length <= available else { throw ModelFileError.truncated }
        let payload = bytes[headerSize..<(headerSize + Int(length))]
        let actual = CRC32.checksum(payload)
        guard actual == expected, length == available else {
            throw ModelFileError.checksumMismatch(expected: expected, actual: actual)
        }
        do {
            return try JSONDecoder().decode(TextClassifier.self, from: Data(payload))
        } catch {
            throw ModelFileError.invalidPayload(String(describing: error))
        }
    }

    /// Writes `classifier` to `url` atomically.
    /// - Throws: encoding or file-system errors.
    public static func save(_ classifier: TextClassifier, to url: URL) throws {
        try encode(classifier).write(to: url, options: .atomic)
    }

    /// Reads a classifier from `url`.
    /// - Throws: file-system errors or ``ModelFileError``.
    public static func load(from url: URL) throws -> TextClassifier {
        try decode(Data(contentsOf: url))
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to data: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    private static func readInteger(_ bytes: [UInt8], at offset: Int, width: Int) -> UInt64 {
        var value: UInt64 = 0
        for k in 0..<width { value |= UInt64(bytes[offset + k]) << (8 * UInt64(k)) }
        return value
    }
}
