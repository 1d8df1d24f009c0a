import Fluent
import Foundation

/// A file a message carries, as the message shows it (stored with the message, so reading a
/// page of history needs no other table).
struct MessageAttachment: Codable, Sendable, Equatable {
    var id: String
    var name: String
    var mediaType: String
    var size: Int64
    var width: Int?
    var height: Int?
    /// A small picture of it (pictures Parley can decode), served as PNG.
    var thumbnailURL: String?

    /// Where members download it.
    var url: String { "/v1/uploads/\(id)/content" }

    enum CodingKeys: String, CodingKey {
        case id, name, size, width, height, url
        case mediaType = "media_type"
        case thumbnailURL = "thumbnail_url"
    }

    init(id: String, name: String, mediaType: String, size: Int64, width: Int?, height: Int?, thumbnailURL: String? = nil) {
        self.thumbnailURL = thumbnailURL
        self.id = id
        self.name = name
        self.mediaType = mediaType
        self.size = size
        self.width = width
        self.height = height
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        name = try container.decode(String.self, forKey: .name)
        mediaType = try container.decode(String.self, forKey: .mediaType)
        size = try container.decode(Int64.self, forKey: .size)
        width = try container.decodeIfPresent(Int.self, forKey: .width)
        height = try container.decodeIfPresent(Int.self, forKey: .height)
        thumbnailURL = try container.decodeIfPresent(String.self, forKey: .thumbnailURL)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(mediaType, forKey: .mediaType)
        try container.encode(size, forKey: .size)
        try container.encodeIfPresent(width, forKey: .width)
        try container.encodeIfPresent(height, forKey: .height)
        try container.encode(url, forKey: .url)
        try container.encodeIfPresent(thumbnailURL, forKey: .thumbnailURL)
    }
}

/// The files seam: messages carry uploads that another feature (Files) keeps. It runs in the
/// send's transaction, so a message and its files are linked together or not at all.
protocol MessageAttachments: Sendable {
    /// Links the author's uploads `ids` to the message being sent and returns them in order.
    /// Throws a `ValidationError` on `attachments` when one is not the author's upload, or a
    /// message already carries it; the send then rolls back.
    func attach(_ ids: [UUID], to messageID: UUID, in conversationID: UUID, by authorID: UUID,
                tx: any Database) async throws -> [MessageAttachment]
}

/// A server that keeps no files: a message with attachments is refused.
struct NoAttachments: MessageAttachments {
    func attach(_ ids: [UUID], to messageID: UUID, in conversationID: UUID, by authorID: UUID,
                tx: any Database) async throws -> [MessageAttachment] {
        guard ids.isEmpty else {
            throw ValidationError(field: "attachments", code: "not_supported", message: "this server keeps no files")
        }
        return []
    }
}
