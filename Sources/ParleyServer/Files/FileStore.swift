import Fluent
import Foundation
import Vapor

/// Where the bytes of uploaded files live, under their SHA-256 (so the same bytes are kept
/// once however often they are uploaded). The `files` table says which files use them.
protocol FileStore: Sendable {
    /// Takes the finished upload at `staged` and keeps its bytes under its digest. The staged
    /// file is gone afterwards (moved, or copied and removed). Bytes already kept under that
    /// digest are left as they are, and marked fresh so a sweep running now keeps them.
    func keep(_ staged: StagedUpload) async throws

    /// Keeps `bytes` (small, already in memory: thumbnails) under `digest`.
    func keep(_ bytes: [UInt8], digest: String) async throws

    /// Whether bytes are kept under `digest`.
    func contains(_ digest: String) async throws -> Bool

    /// The kept bytes, whole (thumbnails and their sources; bounded by the upload limit).
    func read(_ digest: String) async throws -> [UInt8]

    /// A response that streams the bytes (with `Range` support where the store has it).
    func response(for request: Request, digest: String, size: Int64, mediaType: HTTPMediaType) async throws -> Response

    /// Deletes kept bytes that no file uses (`inUse` answers for a batch of digests) and that
    /// were kept before `before` (younger ones may belong to an upload finishing now).
    /// Returns how many went.
    func sweep(before: Date, inUse: @Sendable ([String]) async throws -> Set<String>) async throws -> Int
}
