import Crypto
import Foundation
import NIOCore
import _NIOFileSystem

/// An upload written to a staging file as it arrives, never whole in memory: its size, its
/// SHA-256 and its first bytes (for sniffing) are worked out on the way.
struct StagedUpload: Sendable {
    let path: String
    let size: Int64
    /// Lower-case hex SHA-256 of the bytes.
    let digest: String
    /// The first `FileType.headerLength` bytes.
    let head: [UInt8]

    /// Writes `body` to a new file in `directory`, refusing more than `limit` bytes. The file is
    /// created transactionally (NIOFileSystem writes an unnamed file and gives it its name only
    /// when it is closed whole), so a crash mid-upload leaves nothing; on any failure (too
    /// large, the client gone mid-body, a full disk) it never appears and the error is rethrown.
    static func receive<Body: AsyncSequence & Sendable>(_ body: Body, into directory: String, limit: Int,
                                                        hooks: UploadHooks? = nil) async throws -> StagedUpload
    where Body.Element == ByteBuffer {
        try await FileSystem.shared.createDirectory(at: FilePath(directory), withIntermediateDirectories: true)
        let path = directory + "/" + UUID().wire + ".part"
        do {
            return try await FileSystem.shared.withFileHandle(
                forWritingAt: FilePath(path), options: .newFile(replaceExisting: false)
            ) { handle in
                var writer = handle.bufferedWriter()
                var hasher = SHA256()
                var size: Int64 = 0
                var head: [UInt8] = []
                for try await chunk in body {
                    size += Int64(chunk.readableBytes)
                    if size > Int64(limit) { throw FileError.tooLarge(limit: limit) }
                    chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                    if head.count < FileType.headerLength {
                        head += chunk.getBytes(at: chunk.readerIndex, length: min(chunk.readableBytes, FileType.headerLength - head.count)) ?? []
                    }
                    _ = try await writer.write(contentsOf: chunk)
                    if size == Int64(chunk.readableBytes) { try await writer.flush(); hooks?.record(.receiving) }
                }
                _ = try await writer.flush()
                // Durable before any row names it: a crash after the commit must not find it missing.
                try await handle.synchronize()
                return StagedUpload(path: path, size: size, digest: hasher.finalize().hexString, head: head)
            }
        } catch {
            _ = try? await FileSystem.shared.removeItem(at: FilePath(path))
            hooks?.record(.discarded)
            throw error
        }
    }

    /// Removes the staging file (after a refusal).
    func discard() async {
        _ = try? await FileSystem.shared.removeItem(at: FilePath(path))
    }

    /// Up to `count` bytes from the start (for a JPEG whose size sits after large metadata).
    func prefix(_ count: Int) async throws -> [UInt8] {
        try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { handle in
            Array(buffer: try await handle.readChunk(fromAbsoluteOffset: 0, length: .bytes(Int64(count))))
        }
    }
}
