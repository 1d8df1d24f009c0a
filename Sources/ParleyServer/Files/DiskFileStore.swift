import Foundation
import NIOCore
import Vapor
import _NIOFileSystem

/// Bytes in a folder, one file per digest (`ab/cd/abcd…`), put there by an atomic rename
/// of the finished staging file: a crash leaves either no file or the whole file, never a
/// part of one under a digest.
struct DiskFileStore: FileStore {
    let directory: String
    /// Sets the kept files' times (the sweep's grace period is measured on the same clock).
    let clock: AppClock

    /// Where uploads are staged while they arrive: inside the store, so keeping one is a
    /// rename on the same file system.
    var stagingDirectory: String { directory + "/tmp" }

    func path(of digest: String) -> String {
        let hex = digest.lowercased()
        return "\(directory)/\(hex.prefix(2))/\(hex.dropFirst(2).prefix(2))/\(hex)"
    }

    func keep(_ staged: StagedUpload) async throws {
        let target = path(of: staged.digest)
        if try await FileSystem.shared.info(forFileAt: FilePath(target)) != nil {
            await staged.discard()
            try await touch(target)
            return
        }
        try await FileSystem.shared.createDirectory(
            at: FilePath(target).removingLastComponent(), withIntermediateDirectories: true, permissions: nil)
        try await touch(staged.path)
        // rename(2) replaces atomically; two uploads of the same bytes racing here both leave
        // the same whole file.
        try await FileSystem.shared.replaceItem(at: FilePath(target), withItemAt: FilePath(staged.path))
    }

    func keep(_ bytes: [UInt8], digest: String) async throws {
        let target = path(of: digest)
        if try await FileSystem.shared.info(forFileAt: FilePath(target)) != nil {
            try await touch(target)
            return
        }
        try await FileSystem.shared.createDirectory(at: FilePath(stagingDirectory), withIntermediateDirectories: true, permissions: nil)
        try await FileSystem.shared.createDirectory(
            at: FilePath(target).removingLastComponent(), withIntermediateDirectories: true, permissions: nil)
        let staging = stagingDirectory + "/" + UUID().wire + ".part"
        do {
            try await FileSystem.shared.withFileHandle(forWritingAt: FilePath(staging), options: .newFile(replaceExisting: false)) { handle in
                _ = try await handle.write(contentsOf: bytes, toAbsoluteOffset: 0)
                try await handle.synchronize()
            }
            try await touch(staging)
            try await FileSystem.shared.replaceItem(at: FilePath(target), withItemAt: FilePath(staging))
        } catch {
            _ = try? await FileSystem.shared.removeItem(at: FilePath(staging), recursively: false)
            throw error
        }
    }

    func contains(_ digest: String) async throws -> Bool {
        try await FileSystem.shared.info(forFileAt: FilePath(path(of: digest))) != nil
    }

    func read(_ digest: String) async throws -> [UInt8] {
        try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path(of: digest))) { handle in
            Array(buffer: try await handle.readToEnd(maximumSizeAllowed: .bytes(Int64.max)))
        }
    }

    func response(for request: Request, digest: String, size: Int64, mediaType: HTTPMediaType) async throws -> Response {
        try await request.fileio.asyncStreamFile(at: path(of: digest), mediaType: mediaType)
    }

    func sweep(before: Date, inUse: @Sendable ([String]) async throws -> Set<String>) async throws -> Int {
        guard try await FileSystem.shared.info(forFileAt: FilePath(directory)) != nil else { return 0 }
        var removed = 0
        var candidates: [(digest: String, path: String)] = []
        let cutoff = before.timeIntervalSince1970
        func flush() async throws {
            let used = try await inUse(candidates.map(\.digest))
            for candidate in candidates where !used.contains(candidate.digest) {
                // Checked again just before: an upload of the same bytes may have touched it since.
                guard let info = try await FileSystem.shared.info(forFileAt: FilePath(candidate.path)),
                      Double(info.lastDataModificationTime.seconds) < cutoff
                else { continue }
                removed += try await FileSystem.shared.removeItem(at: FilePath(candidate.path), recursively: false)
            }
            candidates.removeAll()
        }
        try await FileSystem.shared.withDirectoryHandle(atPath: FilePath(directory)) { root in
            for try await entry in root.listContents(recursive: true) where entry.type == .regular {
                let name = entry.name.string
                let path = entry.path.string
                if path.hasPrefix(stagingDirectory + "/") {
                    // A staging file this old was left by a crash mid-upload.
                    if let info = try await FileSystem.shared.info(forFileAt: entry.path), Double(info.lastDataModificationTime.seconds) < cutoff {
                        removed += try await FileSystem.shared.removeItem(at: entry.path, recursively: false)
                    }
                    continue
                }
                guard name.count == 64, name.allSatisfy(\.isHexDigit), let info = try await FileSystem.shared.info(forFileAt: entry.path),
                      Double(info.lastDataModificationTime.seconds) < cutoff
                else { continue }
                candidates.append((name, path))
                if candidates.count >= 500 { try await flush() }
            }
        }
        try await flush()
        return removed
    }

    /// Marks kept bytes as fresh (modified now, by the application's clock), so a sweep running
    /// now does not take them from an upload that found them already there.
    private func touch(_ path: String) async throws {
        let now = clock.now().timeIntervalSince1970
        let time = FileInfo.Timespec(seconds: Int(now), nanoseconds: Int((now - now.rounded(.down)) * 1e9))
        try await FileSystem.shared.withFileHandle(forWritingAt: FilePath(path), options: .modifyFile(createIfNecessary: false)) { handle in
            try await handle.setTimes(lastAccess: time, lastDataModification: time)
        }
    }
}
