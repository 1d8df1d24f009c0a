import Fluent
import Imaging
import Foundation
import NIOCore

/// Uploads: receiving them (streamed to a staging file, sniffed, kept by the store), who may
/// see them, and removing them. Independent of HTTP.
struct UploadService: Sendable {
    let db: any Database
    let dependencies: FilesDependencies

    private var settings: Settings.Files { dependencies.settings }

    /// Receives an upload's bytes and records it as the uploader's, unattached. Nothing is
    /// recorded unless the bytes are whole, within the limit and of an allowed type; the
    /// staging file is removed on every refusal.
    func upload<Body: AsyncSequence & Sendable>(_ body: Body, declaredLength: Int?, name: String?, by uploaderID: UUID) async throws
        -> StoredFile where Body.Element == ByteBuffer {
        if let declaredLength, declaredLength > settings.maxBytes { throw FileError.tooLarge(limit: settings.maxBytes) }
        let staged = try await StagedUpload.receive(body, into: dependencies.stagingDirectory, limit: settings.maxBytes,
                                                    hooks: dependencies.hooks)
        var type = FileType.sniff(staged.head)
        guard staged.size > 0 else {
            await staged.discard()
            throw FileError.empty
        }
        guard type.isAllowed(by: settings.allowedTypes) else {
            await staged.discard()
            throw FileError.typeNotAllowed(sniffed: type.mediaType, allowed: settings.allowedTypes)
        }
        if type.mediaType == "image/jpeg" {
            // The frame header can sit after large metadata (EXIF, an embedded preview), and a
            // camera's orientation tag may turn the picture a quarter: the size is as it shows.
            let head = try await staged.prefix(256 * 1024)
            if type.width == nil, let size = FileType.jpegSize(head) { (type.width, type.height) = (size.width, size.height) }
            if let orientation = ImageInfo.jpegOrientation(head), (5...8).contains(orientation) {
                (type.width, type.height) = (type.height, type.width)
            }
        }
        try await dependencies.store.keep(staged)
        let file = StoredFile(id: UUID.timeOrdered(), uploaderID: uploaderID, digest: staged.digest, size: staged.size, mediaType: type.mediaType,
                              name: FileName.sanitize(name), width: type.width, height: type.height,
                              createdAt: dependencies.clock.now())
        let now = file.createdAt
        try await db.writeTransaction(dependencies.writes) { tx, outbox in
            try await StoredFile.insert(file, on: tx)
            if file.hasThumbnail {
                try await JobQueue.enqueue(try .init(queue: Thumbnails.queue, payload: Thumbnails.Job(fileID: file.id.wire),
                                                     dedupeKey: "thumbnail:\(file.id.wire)", maxAttempts: 3),
                                           at: now, in: outbox)
            }
        }
        return file
    }

    /// The upload, if `viewerID` may see it: its uploader, or anyone who may read the
    /// conversation of the message that carries it. Anyone else gets `notFound`.
    func file(_ id: UUID, viewer viewerID: UUID) async throws -> StoredFile {
        guard let file = try await StoredFile.find(id, on: db) else { throw FileError.notFound }
        if file.uploaderID == viewerID { return file }
        guard let conversationID = file.conversationID else { throw FileError.notFound }
        do {
            _ = try await dependencies.chat.conversations(db).access(conversationID, userID: viewerID)
        } catch ConversationError.conversationNotFound {
            throw FileError.notFound
        }
        return file
    }

    /// The uploader's uploads that no message carries yet, newest first.
    func unattached(of uploaderID: UUID, limit: Int) async throws -> [StoredFile] {
        try await StoredFile.unattached(of: uploaderID, limit: limit, on: db)
    }

    /// Deletes an upload no message carries (its bytes go at the next sweep if nothing else
    /// uses them). A file on a message goes with the message.
    func delete(_ id: UUID, by userID: UUID) async throws {
        guard let file = try await StoredFile.find(id, on: db), file.uploaderID == userID else { throw FileError.notFound }
        guard file.messageID == nil else { throw FileError.attached }
        try await db.writeTransaction(dependencies.writes) { tx in try await StoredFile.delete(id, on: tx) }
    }
}
