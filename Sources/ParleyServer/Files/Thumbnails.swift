import Crypto
import Fluent
import Foundation
import Imaging
import NIOPosix

/// Thumbnails of uploaded pictures: made by a job right after the upload (queue
/// `files.thumbnail`), or on the first request for one that is not made yet. Decoding runs on
/// a small thread pool of its own, so pictures never hold up the event loops and at most that
/// many decode at once.
struct Thumbnails: Sendable {
    static let queue = "files.thumbnail"
    /// Pictures Parley can decode (WebP cannot be, yet: those show as themselves).
    static let decodable: Set<String> = ["image/png", "image/jpeg", "image/gif"]
    /// The longer side of a thumbnail, in pixels.
    static let maxSide = 360
    /// Pictures larger than this are not decoded (a 24-megapixel picture is 96 MB as pixels).
    static let maxPixels = 24_000_000

    struct Job: Codable, Sendable {
        var fileID: String
        enum CodingKeys: String, CodingKey { case fileID = "file_id" }
    }

    let dependencies: FilesDependencies
    let pool: NIOThreadPool

    /// The job's handler.
    func handle(_ job: JobQueue.ClaimedJob, on db: any Database) async throws {
        let input = try job.decode(Job.self)
        guard let id = UUID(wire: input.fileID), let file = try await StoredFile.find(id, on: db) else { return }
        _ = try await thumbnail(of: file, on: db)
    }

    /// The file's thumbnail, made now if it is not yet.
    func thumbnail(of file: StoredFile, on db: any Database) async throws -> StoredFile.Thumbnail {
        guard file.hasThumbnail else { return .failed }
        if case .ready = file.thumbnail { return file.thumbnail }
        let bytes = try await dependencies.store.read(file.digest)
        let made: (bytes: [UInt8], width: Int, height: Int)?
        do {
            made = try await pool.runIfActive {
                let image = try ImageDecoder.decode(bytes, maxPixels: Self.maxPixels)
                let small = Thumbnail.make(image, maxSide: Self.maxSide)
                return (PNGEncoder.encode(small), small.width, small.height)
            }
        } catch is ImageError {
            made = nil
        }
        let result: StoredFile.Thumbnail
        if let made {
            let digest = SHA256.hash(data: made.bytes).hexString
            try await dependencies.store.keep(made.bytes, digest: digest)
            result = .ready(digest: digest, width: made.width, height: made.height)
        } else {
            result = .failed
        }
        try await db.writeTransaction(dependencies.writes) { tx in
            try await StoredFile.setThumbnail(result, forDigest: file.digest, on: tx)
        }
        return result
    }
}
