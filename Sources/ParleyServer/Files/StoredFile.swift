import Foundation
import SQLKit
import Fluent

/// An uploaded file, and the owner of the `files` table's SQL. The bytes are in the
/// configured `FileStore` under `digest`; several files may share them.
struct StoredFile: Sendable, Equatable {
    static let table = "files"

    var id: UUID
    var uploaderID: UUID
    /// SHA-256 of the bytes, lower-case hex.
    var digest: String
    var size: Int64
    /// Sniffed from the bytes.
    var mediaType: String
    /// Sanitised (`FileName`).
    var name: String
    var width: Int?
    var height: Int?
    /// Where it was attached (nil until a message carries it).
    var conversationID: UUID?
    var messageID: UUID?
    var thumbnail: Thumbnail = .pending
    var createdAt: Date

    enum Thumbnail: Sendable, Equatable {
        /// Not made yet (or not a picture: see `hasThumbnail`).
        case pending
        case ready(digest: String, width: Int, height: Int)
        /// The picture could not be decoded.
        case failed
    }

    /// Pictures of the kinds Parley decodes get a thumbnail.
    var hasThumbnail: Bool { Thumbnails.decodable.contains(mediaType) && thumbnail != .failed }

    var attachment: MessageAttachment {
        MessageAttachment(id: id.wire, name: name, mediaType: mediaType, size: size, width: width, height: height,
                          thumbnailURL: hasThumbnail ? "/v1/uploads/\(id.wire)/thumbnail" : nil)
    }

    private struct Row: Decodable {
        let id: UUID, uploader_id: UUID, digest: String, size: Int64, media_type: String, name: String, width: Int?, height: Int?
        let conversation_id: UUID?, message_id: UUID?, created_at: Date
        let thumbnail_digest: String?, thumbnail_width: Int?, thumbnail_height: Int?, thumbnail_failed: Bool
        var file: StoredFile {
            var file = StoredFile(id: id, uploaderID: uploader_id, digest: digest, size: size, mediaType: media_type, name: name,
                                  width: width, height: height, conversationID: conversation_id, messageID: message_id,
                                  createdAt: created_at)
            if thumbnail_failed {
                file.thumbnail = .failed
            } else if let thumbnail_digest, let thumbnail_width, let thumbnail_height {
                file.thumbnail = .ready(digest: thumbnail_digest, width: thumbnail_width, height: thumbnail_height)
            }
            return file
        }
    }

    private static let columns: SQLQueryString = """
        id, uploader_id, digest, size, media_type, name, width, height, conversation_id, message_id, created_at,
        thumbnail_digest, thumbnail_width, thumbnail_height, thumbnail_failed
        """

    init(id: UUID, uploaderID: UUID, digest: String, size: Int64, mediaType: String, name: String, width: Int?, height: Int?,
         conversationID: UUID? = nil, messageID: UUID? = nil, createdAt: Date) {
        self.id = id
        self.uploaderID = uploaderID
        self.digest = digest
        self.size = size
        self.mediaType = mediaType
        self.name = name
        self.width = width
        self.height = height
        self.conversationID = conversationID
        self.messageID = messageID
        self.createdAt = createdAt
    }

    static func insert(_ file: StoredFile, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("""
            INSERT INTO files (id, uploader_id, digest, size, media_type, name, width, height, created_at)
            VALUES (\(bind: file.id), \(bind: file.uploaderID), \(bind: file.digest), \(bind: file.size), \(bind: file.mediaType),
                    \(bind: file.name), \(bind: file.width), \(bind: file.height), \(bind: file.createdAt))
            """).run()
    }

    static func find(_ id: UUID, on db: any Database) async throws -> StoredFile? {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw("SELECT " + columns + " FROM files WHERE id = \(bind: id)").first(decoding: Row.self)?.file
    }

    /// Someone's uploads that no message carries yet, newest first.
    static func unattached(of uploaderID: UUID, limit: Int, on db: any Database) async throws -> [StoredFile] {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        return try await sql.raw("""
            SELECT \(columns) FROM files WHERE uploader_id = \(bind: uploaderID) AND message_id IS NULL
            ORDER BY created_at DESC, id DESC LIMIT \(unsafeRaw: String(limit))
            """).all(decoding: Row.self).map(\.file)
    }

    /// Links `ids` (uploads of `uploaderID` that no message carries) to a message, in the
    /// caller's transaction; returns the files it linked, in the order of `ids`. A conditional
    /// update, so two messages can never both take the same upload.
    static func attach(_ ids: [UUID], uploadedBy uploaderID: UUID, to messageID: UUID, in conversationID: UUID,
                       on db: any Database) async throws -> [StoredFile] {
        guard let sql = db as? any SQLDatabase, !ids.isEmpty else { return [] }
        let linked = try await sql.raw("""
            UPDATE files SET message_id = \(bind: messageID), conversation_id = \(bind: conversationID)
            WHERE id IN (\(binds: ids)) AND uploader_id = \(bind: uploaderID) AND message_id IS NULL
            RETURNING
            """ + " " + columns).all(decoding: Row.self).map(\.file)
        let byID = Dictionary(linked.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return ids.compactMap { byID[$0] }
    }

    /// Records the thumbnail made for a file (every file with the same bytes gets it).
    static func setThumbnail(_ thumbnail: Thumbnail, forDigest digest: String, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        switch thumbnail {
        case .pending:
            return
        case .ready(let thumbDigest, let width, let height):
            try await sql.raw("""
                UPDATE files SET thumbnail_digest = \(bind: thumbDigest), thumbnail_width = \(bind: width), thumbnail_height = \(bind: height)
                WHERE digest = \(bind: digest)
                """).run()
        case .failed:
            try await sql.raw("UPDATE files SET thumbnail_failed = \(bind: true) WHERE digest = \(bind: digest)").run()
        }
    }

    /// Of `digests`, those some file uses as its bytes or its thumbnail.
    static func inUse(_ digests: [String], on db: any Database) async throws -> Set<String> {
        guard let sql = db as? any SQLDatabase, !digests.isEmpty else { return [] }
        struct DigestRow: Decodable { let digest: String }
        return Set(try await sql.raw("""
            SELECT digest FROM files WHERE digest IN (\(binds: digests))
            UNION SELECT thumbnail_digest AS digest FROM files WHERE thumbnail_digest IN (\(binds: digests))
            """).all(decoding: DigestRow.self).map(\.digest))
    }

    /// Forgets the files of messages that were deleted. Returns how many went.
    @discardableResult
    static func deleteAttached(to messageIDs: [UUID], on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase, !messageIDs.isEmpty else { return 0 }
        struct IDRow: Decodable { let id: UUID }
        return try await sql.raw("DELETE FROM files WHERE message_id IN (\(binds: messageIDs)) RETURNING id").all(decoding: IDRow.self).count
    }

    /// Of `messageIDs`, whether any carries a file.
    static func anyAttached(to messageIDs: [UUID], on db: any Database) async throws -> Bool {
        guard let sql = db as? any SQLDatabase, !messageIDs.isEmpty else { return false }
        struct IDRow: Decodable { let id: UUID }
        return try await sql.raw("SELECT id FROM files WHERE message_id IN (\(binds: messageIDs)) LIMIT 1").first(decoding: IDRow.self) != nil
    }

    /// Forgets the files of a conversation that was deleted. Returns how many went.
    @discardableResult
    static func deleteAll(in conversationID: UUID, on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct IDRow: Decodable { let id: UUID }
        return try await sql.raw("DELETE FROM files WHERE conversation_id = \(bind: conversationID) RETURNING id").all(decoding: IDRow.self).count
    }

    static func delete(_ id: UUID, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        try await sql.raw("DELETE FROM files WHERE id = \(bind: id)").run()
    }

    /// Forgets uploads that no message took within their time (the sender gave up). Returns
    /// how many went.
    static func deleteUnattached(before date: Date, on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct IDRow: Decodable { let id: UUID }
        return try await sql.raw("DELETE FROM files WHERE message_id IS NULL AND created_at < \(bind: date) RETURNING id")
            .all(decoding: IDRow.self).count
    }
}
