import Fluent
import Foundation
import NIOCore
import SQLKit
import Vapor
import _NIOFileSystem

/// Bytes in the database (`file_chunks`, this type owning its SQL), so every node of a
/// cluster serves the same files with no shared disk. A file's chunks are written in one
/// transaction: chunk 0 present means the whole file is.
struct DatabaseFileStore: FileStore {
    static let table = "file_chunks"
    /// Small enough to hold one in memory per transfer, large enough that a file is few rows.
    static let chunkSize = 512 * 1024

    let database: @Sendable () throws -> any Database
    let writes: WriteGate
    let clock: AppClock

    private struct IndexRow: Decodable { let idx: Int }
    private struct BytesRow: Decodable { let bytes: Data }
    private struct DigestRow: Decodable { let digest: String }

    func keep(_ staged: StagedUpload) async throws {
        do {
            try await copy(staged)
        } catch {
            await staged.discard()
            throw error
        }
        await staged.discard()
    }

    private func copy(_ staged: StagedUpload) async throws {
        if try await touch(staged.digest) { return }
        let digest = staged.digest, path = staged.path, now = clock.now()
        try await database().writeTransaction(writes) { tx in
            guard let sql = tx as? any SQLDatabase else { throw StorageError.notSQL }
            try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { handle in
                var index = 0
                for try await chunk in handle.readChunks(chunkLength: .bytes(Int64(Self.chunkSize))) {
                    try await Self.insert(digest, index, Data(buffer: chunk), at: now, on: sql)
                    index += 1
                }
                if index == 0 { try await Self.insert(digest, 0, Data(), at: now, on: sql) }
            }
        }
    }

    func keep(_ bytes: [UInt8], digest: String) async throws {
        if try await touch(digest) { return }
        let now = clock.now()
        try await database().writeTransaction(writes) { tx in
            guard let sql = tx as? any SQLDatabase else { throw StorageError.notSQL }
            var index = 0
            for start in stride(from: 0, to: max(bytes.count, 1), by: Self.chunkSize) {
                try await Self.insert(digest, index, Data(bytes[start..<min(start + Self.chunkSize, bytes.count)]), at: now, on: sql)
                index += 1
            }
        }
    }

    func contains(_ digest: String) async throws -> Bool {
        guard let sql = try database() as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw("SELECT idx FROM file_chunks WHERE digest = \(bind: digest) AND idx = 0")
            .first(decoding: IndexRow.self) != nil
    }

    func read(_ digest: String) async throws -> [UInt8] {
        guard let sql = try database() as? any SQLDatabase else { throw StorageError.notSQL }
        var bytes: [UInt8] = []
        for index in try await Self.indexes(of: digest, on: sql) {
            guard let row = try await sql.raw("SELECT bytes FROM file_chunks WHERE digest = \(bind: digest) AND idx = \(bind: index)")
                .first(decoding: BytesRow.self)
            else { throw FileError.notFound }
            bytes += row.bytes
        }
        return bytes
    }

    func response(for request: Request, digest: String, size: Int64, mediaType: HTTPMediaType) async throws -> Response {
        guard let sql = try database() as? any SQLDatabase else { throw StorageError.notSQL }
        let indexes = try await Self.indexes(of: digest, on: sql)
        guard !indexes.isEmpty else { throw FileError.notFound }
        var headers = HTTPHeaders()
        headers.contentType = mediaType
        // One chunk in memory at a time, written as the client takes it.
        let body = Response.Body(asyncStream: { writer in
            do {
                for index in indexes {
                    guard let row = try await sql.raw("SELECT bytes FROM file_chunks WHERE digest = \(bind: digest) AND idx = \(bind: index)")
                        .first(decoding: BytesRow.self)
                    else { throw FileError.notFound }
                    try await writer.write(.buffer(ByteBuffer(data: row.bytes)))
                }
                try await writer.write(.end)
            } catch {
                try await writer.write(.error(error))
            }
        }, count: Int(size))
        return Response(status: .ok, headers: headers, body: body)
    }

    func sweep(before: Date, inUse: @Sendable ([String]) async throws -> Set<String>) async throws -> Int {
        let db = try database()
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        var removed = 0
        var after = ""
        while true {
            let digests = try await sql.raw("""
                SELECT DISTINCT digest FROM file_chunks WHERE stored_at < \(bind: before) AND digest > \(bind: after)
                ORDER BY digest LIMIT 500
                """).all(decoding: DigestRow.self).map(\.digest)
            guard let last = digests.last else { return removed }
            after = last
            let unused = Set(digests).subtracting(try await inUse(digests))
            guard !unused.isEmpty else { continue }
            // `stored_at < before` again: an upload of the same bytes may have touched them since.
            removed += try await db.writeTransaction(writes) { tx in
                guard let sql = tx as? any SQLDatabase else { throw StorageError.notSQL }
                return try await sql.raw("""
                    DELETE FROM file_chunks WHERE digest IN (\(binds: Array(unused))) AND stored_at < \(bind: before) RETURNING digest
                    """).all(decoding: DigestRow.self).count
            }
        }
    }

    /// Marks kept bytes fresh; false when there are none under `digest`.
    private func touch(_ digest: String) async throws -> Bool {
        let now = clock.now()
        return try await database().writeTransaction(writes) { tx in
            guard let sql = tx as? any SQLDatabase else { throw StorageError.notSQL }
            return try await sql.raw("UPDATE file_chunks SET stored_at = \(bind: now) WHERE digest = \(bind: digest) RETURNING idx")
                .all(decoding: IndexRow.self).contains { $0.idx == 0 }
        }
    }

    private static func insert(_ digest: String, _ index: Int, _ bytes: Data, at now: Date, on sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO file_chunks (digest, idx, bytes, stored_at) VALUES (\(bind: digest), \(bind: index), \(bind: bytes), \(bind: now))
            ON CONFLICT DO NOTHING
            """).run()
    }

    private static func indexes(of digest: String, on sql: any SQLDatabase) async throws -> [Int] {
        try await sql.raw("SELECT idx FROM file_chunks WHERE digest = \(bind: digest) ORDER BY idx").all(decoding: IndexRow.self).map(\.idx)
    }
}
