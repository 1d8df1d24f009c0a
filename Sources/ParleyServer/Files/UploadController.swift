import Fluent
import Vapor

/// `/v1/uploads`: upload a file (the raw bytes as the body, streamed), see it, download it
/// and its thumbnail, delete it while no message carries it.
struct UploadController: RouteCollection {
    let dependencies: FilesDependencies
    let thumbnails: Thumbnails
    let authentication: AuthenticationMiddleware

    func boot(routes: any RoutesBuilder) throws {
        let uploads = routes.grouped(authentication).grouped("uploads")
        // Streamed: the body goes to a staging file as it arrives, never whole into memory.
        uploads.on(.POST, body: .stream, use: upload)
        uploads.get(use: list)
        uploads.get(":upload_id", use: show)
        uploads.get(":upload_id", "content", use: content)
        uploads.get(":upload_id", "thumbnail", use: thumbnail)
        uploads.delete(":upload_id", use: delete)
    }

    @Sendable
    func upload(_ request: Request) async throws -> Response {
        let principal = try request.principal()
        let name = request.query[String.self, at: "name"]
        let declared = request.headers.first(name: .contentLength).flatMap(Int.init)
        let file = try await dependencies.uploads(request.db).upload(request.body, declaredLength: declared, name: name,
                                                                    by: principal.userID)
        let response = try await UploadDTO(file).encodeResponse(status: .created, for: request)
        response.headers.replaceOrAdd(name: .location, value: "/v1/uploads/\(file.id.wire)")
        return response
    }

    @Sendable
    func list(_ request: Request) async throws -> Page<UploadDTO> {
        let limit = try request.pageLimit(default: 50, range: 1...200)
        let files = try await dependencies.uploads(request.db).unattached(of: try request.principal().userID, limit: limit)
        return Page(items: files.map(UploadDTO.init), nextCursor: nil)
    }

    @Sendable
    func show(_ request: Request) async throws -> UploadDTO {
        UploadDTO(try await file(request))
    }

    @Sendable
    func content(_ request: Request) async throws -> Response {
        let file = try await file(request)
        let inline = FileType.inlineTypes.contains(file.mediaType)
        return try await serve(request, digest: file.digest, mediaType: file.mediaType,
                               disposition: FileName.contentDisposition(inline ? "inline" : "attachment", name: file.name)) { type in
            try await dependencies.store.response(for: request, digest: file.digest, size: file.size, mediaType: type)
        }
    }

    @Sendable
    func thumbnail(_ request: Request) async throws -> Response {
        let file = try await file(request)
        guard case .ready(let digest, _, _) = try await thumbnails.thumbnail(of: file, on: request.db) else { throw FileError.noThumbnail }
        // Small (a few tens of KB): read whole rather than streamed.
        return try await serve(request, digest: digest, mediaType: "image/png",
                               disposition: FileName.contentDisposition("inline", name: file.name + ".png")) { type in
            var headers = HTTPHeaders()
            headers.contentType = type
            return Response(status: .ok, headers: headers, body: .init(data: Data(try await dependencies.store.read(digest))))
        }
    }

    @Sendable
    func delete(_ request: Request) async throws -> HTTPStatus {
        let id = try request.idParameter("upload_id", orThrow: FileError.notFound)
        try await dependencies.uploads(request.db).delete(id, by: try request.principal().userID)
        return .noContent
    }

    private func file(_ request: Request) async throws -> StoredFile {
        let id = try request.idParameter("upload_id", orThrow: FileError.notFound)
        return try await dependencies.uploads(request.db).file(id, viewer: try request.principal().userID)
    }

    /// The bytes with headers that keep a browser from running them: the sniffed type (never
    /// the client's), `nosniff` (the security headers middleware), a download disposition for
    /// anything but pictures, and a sandboxing Content-Security-Policy. A digest never names
    /// other bytes, so the digest is the ETag.
    private func serve(_ request: Request, digest: String, mediaType: String, disposition: String,
                       body: (HTTPMediaType) async throws -> Response) async throws -> Response {
        let etag = "\"\(digest)\""
        var headers = HTTPHeaders()
        headers.replaceOrAdd(name: .eTag, value: etag)
        // Private: access depends on membership, so no shared cache may keep it.
        headers.replaceOrAdd(name: .cacheControl, value: "private, max-age=3600")
        headers.replaceOrAdd(name: .contentDisposition, value: disposition)
        headers.replaceOrAdd(name: "Content-Security-Policy", value: "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox")
        if let match = request.headers.first(name: .ifNoneMatch),
           match.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag }) {
            return Response(status: .notModified, headers: headers)
        }
        let response = try await body(HTTPMediaType(mediaType))
        for (name, value) in headers { response.headers.replaceOrAdd(name: name, value: value) }
        return response
    }
}

extension HTTPMediaType {
    /// `type/subtype` as sniffed; text gets its charset (uploads are checked to be UTF-8).
    init(_ mediaType: String) {
        let parts = mediaType.split(separator: "/", maxSplits: 1).map(String.init)
        let type = parts.first ?? "application", subType = parts.count > 1 ? parts[1] : "octet-stream"
        self.init(type: type, subType: subType, parameters: type == "text" ? ["charset": "utf-8"] : [:])
    }
}

/// An upload as the API shows it.
struct UploadDTO: Content {
    var id: String
    var name: String
    var mediaType: String
    var size: Int64
    var width: Int?
    var height: Int?
    var url: String
    var thumbnailURL: String?
    /// The message that carries it (nil while unattached).
    var messageID: String?
    var conversationID: String?
    var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case id, name, size, width, height, url
        case mediaType = "media_type"
        case thumbnailURL = "thumbnail_url"
        case messageID = "message_id"
        case conversationID = "conversation_id"
        case createdAt = "created_at"
    }

    init(_ file: StoredFile) {
        let attachment = file.attachment
        id = attachment.id
        name = attachment.name
        mediaType = attachment.mediaType
        size = attachment.size
        width = attachment.width
        height = attachment.height
        url = attachment.url
        thumbnailURL = attachment.thumbnailURL
        messageID = file.messageID?.wire
        conversationID = file.conversationID?.wire
        createdAt = file.createdAt
    }
}
