import Foundation
import Imaging
import NIOCore
import NIOPosix
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

/// Uploads: streamed in, typed from their bytes, attached to messages in the send's
/// transaction, served to those who may read them, thumbnails, and cleaned up when nothing
/// uses them. On both stores (a folder, the database).
@Suite("Files")
struct FileTests {
    /// A real picture of `width`×`height` (a gradient), as PNG.
    static func png(width: Int, height: Int) -> [UInt8] {
        var pixels: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width { pixels += [UInt8(x * 255 / max(1, width - 1)), UInt8(y * 255 / max(1, height - 1)), 128, 255] }
        }
        return PNGEncoder.encode(RGBAImage(width: width, height: height, pixels: pixels))
    }

    static func upload(_ app: Application, _ bytes: [UInt8], name: String?, by user: TestUser,
                       contentType: String = "application/octet-stream") async throws -> JSONResponse {
        var headers = HTTPHeaders()
        headers.bearerAuthorization = BearerAuthorization(token: user.token)
        headers.replaceOrAdd(name: .contentType, value: contentType)
        let query = name.map { "?name=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "") } ?? ""
        let response = try await app.testing().sendRequest(.POST, "v1/uploads" + query, headers: headers, body: ByteBuffer(bytes: bytes))
        return JSONResponse(status: response.status, headers: response.headers, body: response.body.string)
    }

    static func download(_ app: Application, _ path: String, by user: TestUser) async throws -> (HTTPResponseStatus, HTTPHeaders, [UInt8]) {
        var headers = HTTPHeaders()
        headers.bearerAuthorization = BearerAuthorization(token: user.token)
        let response = try await app.testing().sendRequest(.GET, path, headers: headers)
        return (response.status, response.headers, Array(buffer: response.body))
    }

    static func send(_ app: Application, in conversation: String, body: String, attachments: [String], by user: TestUser,
                     key: String? = nil) async throws -> JSONResponse {
        var headers = HTTPHeaders()
        if let key { headers.add(name: "Idempotency-Key", value: key) }
        let ids = attachments.map { "\"\($0)\"" }.joined(separator: ",")
        return try await app.send(.POST, "v1/conversations/\(conversation)/messages", json: #"{"body":\#(jsonString(body)),"attachments":[\#(ids)]}"#,
                                  token: user.token, headers: headers)
    }

    /// Lets the files follower handle every deletion committed so far.
    static func followDeletions(_ app: Application) async throws {
        let follower = try #require(app.storage[FileCleanupFollowerKey.self])
        while try await follower.followOnce() {}
    }

    static func stagingFiles(_ settings: Settings) -> [String] {
        let staging = (settings.files.directory ?? "") + "/tmp"
        return ((try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? [])
    }

    @Test("a picture is uploaded, attached to a message, and served to members with its sniffed type; others get 404",
          arguments: [Settings.Files.Store.disk, .database])
    func uploadAttachDownload(store: Settings.Files.Store) async throws {
        try await withParley({ $0.files.store = store }) { app, context in
            let ann = try await app.user("ann"), ben = try await app.user("ben"), eve = try await app.user("eve")
            let group = try await app.conversation(ann, members: [ben])
            let picture = Self.png(width: 40, height: 30)

            // The client's claimed type is ignored; the name loses its path.
            let uploaded = try await Self.upload(app, picture, name: "../../holiday photo.png", by: ann, contentType: "text/html")
            #expect(uploaded.status == .created, "\(uploaded.body)")
            let id = try #require(uploaded.string("id"))
            #expect(uploaded.string("media_type") == "image/png")
            #expect(uploaded.string("name") == "holiday photo.png")
            #expect(uploaded["size"] as? Int == picture.count)
            #expect(uploaded["width"] as? Int == 40 && uploaded["height"] as? Int == 30)
            #expect(uploaded.headers.first(name: .location) == "/v1/uploads/\(id)")
            #expect(Self.stagingFiles(context.settings).isEmpty, "nothing is left in staging")

            // Before it is sent, only its uploader sees it.
            #expect(try await Self.download(app, "v1/uploads/\(id)/content", by: ben).0 == .notFound)

            let sent = try await Self.send(app, in: group, body: "", attachments: [id], by: ann)
            #expect(sent.status == .created, "\(sent.body)")
            let attachments = try #require(sent["attachments"] as? [[String: Any]])
            #expect(attachments.count == 1)
            #expect(attachments.first?["id"] as? String == id)
            #expect(attachments.first?["url"] as? String == "/v1/uploads/\(id)/content")
            #expect(attachments.first?["thumbnail_url"] as? String == "/v1/uploads/\(id)/thumbnail")

            let (status, headers, bytes) = try await Self.download(app, "v1/uploads/\(id)/content", by: ben)
            #expect(status == .ok)
            #expect(bytes == picture)
            #expect(headers.first(name: .contentType) == "image/png")
            #expect(headers.first(name: .contentDisposition)?.hasPrefix("inline; filename=\"holiday photo.png\"") == true)
            #expect(headers.first(name: "X-Content-Type-Options") == "nosniff")
            #expect(headers.first(name: "Content-Security-Policy")?.contains("sandbox") == true)
            let etag = try #require(headers.first(name: .eTag))
            var conditional = HTTPHeaders()
            conditional.bearerAuthorization = BearerAuthorization(token: ben.token)
            conditional.add(name: .ifNoneMatch, value: etag)
            #expect(try await app.testing().sendRequest(.GET, "v1/uploads/\(id)/content", headers: conditional).status == .notModified)

            // Someone outside the conversation learns nothing, not even that it exists.
            expectProblem(try await app.send(.GET, "v1/uploads/\(id)", token: eve.token), .notFound)
            #expect(try await Self.download(app, "v1/uploads/\(id)/content", by: eve).0 == .notFound)
            #expect(try await Self.download(app, "v1/uploads/\(id)/thumbnail", by: eve).0 == .notFound)

            // The thumbnail is a smaller PNG of the same picture.
            let (thumbStatus, thumbHeaders, thumb) = try await Self.download(app, "v1/uploads/\(id)/thumbnail", by: ben)
            #expect(thumbStatus == .ok)
            #expect(thumbHeaders.first(name: .contentType) == "image/png")
            let decoded = try ImageDecoder.decode(thumb)
            #expect(decoded.width == 40 && decoded.height == 30, "a picture smaller than a thumbnail keeps its size")

            // History shows the attachment too.
            let page = try await app.send(.GET, "v1/conversations/\(group)/messages", token: ben.token)
            #expect((page.items.last?["attachments"] as? [[String: Any]])?.first?["name"] as? String == "holiday photo.png")
        }
    }

    @Test("a large picture's thumbnail is made by the job queue, fits 360 pixels and keeps its aspect")
    func thumbnailJob() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let uploaded = try await Self.upload(app, Self.png(width: 720, height: 240), name: "wide.png", by: ann)
            let id = try #require(uploaded.string("id"))
            // The job was enqueued with the upload; claim it and run its handler here.
            let claimed = try await app.jobs.queue.claim(queues: [Thumbnails.queue], limit: 10, on: app.db)
            #expect(claimed.count == 1)
            let thumbnails = Thumbnails(dependencies: try #require(app.storage[FilesDependenciesKey.self]), pool: .singleton)
            try await thumbnails.handle(try #require(claimed.first), on: app.db)
            let fileID = try #require(UUID(uuidString: id))
            let file = try #require(try await StoredFile.find(fileID, on: app.db))
            guard case .ready(_, let width, let height) = file.thumbnail else {
                Issue.record("no thumbnail: \(file.thumbnail)")
                return
            }
            #expect(width == 360 && height == 120)
            let (status, _, thumb) = try await Self.download(app, "v1/uploads/\(id)/thumbnail", by: ann)
            #expect(status == .ok)
            let image = try ImageDecoder.decode(thumb)
            #expect(image.width == 360 && image.height == 120)
        }
    }

    @Test("a photo turned by its EXIF orientation has the size it shows at, and so has its thumbnail")
    func orientedPhoto() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            // A 40×24 frame tagged "turn clockwise" (orientation 6): it shows 24×40.
            let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("ImagingTests/Fixtures/exif-orientation6-40x24.jpg")
            let photo = Array(try Data(contentsOf: fixture))
            let uploaded = try await Self.upload(app, photo, name: "phone.jpg", by: ann)
            #expect(uploaded.string("media_type") == "image/jpeg")
            #expect(uploaded["width"] as? Int == 24 && uploaded["height"] as? Int == 40)
            let id = try #require(uploaded.string("id"))
            let thumbnail = try ImageDecoder.decode(try await Self.download(app, "v1/uploads/\(id)/thumbnail", by: ann).2)
            #expect(thumbnail.width == 24 && thumbnail.height == 40)
        }
    }

    @Test("a picture that does not decode has no thumbnail and says so, and is still served")
    func brokenPicture() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            var broken = Self.png(width: 50, height: 50)
            broken.removeLast(broken.count / 2)
            let uploaded = try await Self.upload(app, broken, name: "cut.png", by: ann)
            #expect(uploaded.status == .created, "the bytes are a PNG by their signature: \(uploaded.body)")
            let id = try #require(uploaded.string("id"))
            let thumbnail = try await app.send(.GET, "v1/uploads/\(id)/thumbnail", token: ann.token)
            expectProblem(thumbnail, .notFound)
            #expect(thumbnail.string("type")?.hasSuffix("no-thumbnail") == true)
            let again = try await app.send(.GET, "v1/uploads/\(id)", token: ann.token)
            #expect(again["thumbnail_url"] == nil, "a picture that failed once offers no thumbnail")
            #expect(try await Self.download(app, "v1/uploads/\(id)/content", by: ann).2 == broken)
        }
    }

    @Test("types come from the bytes: HTML named photo.png is refused with 415; a GIF with a script inside is served as a GIF that cannot run")
    func sniffing() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let html = Array("<!DOCTYPE html><html><script>alert(1)</script></html>".utf8)
            let refused = try await Self.upload(app, html, name: "photo.png", by: ann, contentType: "image/png")
            expectProblem(refused, .unsupportedMediaType)
            #expect(refused.string("detail")?.contains("text/html") == true)

            let svg = Array(#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.utf8)
            expectProblem(try await Self.upload(app, svg, name: "logo.svg", by: ann, contentType: "image/svg+xml"), .unsupportedMediaType)

            // A polyglot: a GIF header, then markup. It is stored and served as a GIF only.
            let polyglot = Array("GIF89a".utf8) + [1, 0, 1, 0, 0, 0, 0] + Array("<html><script>alert(document.cookie)</script>".utf8)
            let stored = try await Self.upload(app, polyglot, name: "trick.html", by: ann, contentType: "text/html")
            #expect(stored.status == .created, "\(stored.body)")
            #expect(stored.string("media_type") == "image/gif")
            let id = try #require(stored.string("id"))
            let (_, headers, _) = try await Self.download(app, "v1/uploads/\(id)/content", by: ann)
            #expect(headers.first(name: .contentType) == "image/gif")
            #expect(headers.first(name: "X-Content-Type-Options") == "nosniff")
            #expect(headers.first(name: "Content-Security-Policy")?.contains("sandbox") == true)

            // A PDF downloads rather than opening in the page.
            let pdf = try await Self.upload(app, Array("%PDF-1.4\n%âãÏÓ\n1 0 obj\n<<>>\nendobj\n".utf8), name: "report.pdf", by: ann)
            let pdfID = try #require(pdf.string("id"))
            let (_, pdfHeaders, _) = try await Self.download(app, "v1/uploads/\(pdfID)/content", by: ann)
            #expect(pdfHeaders.first(name: .contentDisposition)?.hasPrefix("attachment;") == true)

            expectProblem(try await Self.upload(app, [], name: "empty.txt", by: ann), .unprocessableEntity)
        }
    }

    @Test("a file over the limit is refused with 413 and nothing is kept")
    func tooLarge() async throws {
        try await withParley({ $0.files.maxBytes = 1000 }) { app, context in
            let ann = try await app.user("ann")
            let refused = try await Self.upload(app, Array(repeating: UInt8(ascii: "a"), count: 1001), name: "big.txt", by: ann)
            expectProblem(refused, .payloadTooLarge)
            #expect(refused.string("detail")?.contains("1000") == true)
            #expect(try await app.send(.GET, "v1/uploads", token: ann.token).items.isEmpty)
            #expect(Self.stagingFiles(context.settings).isEmpty)
            #expect(try await Self.upload(app, Array(repeating: UInt8(ascii: "a"), count: 1000), name: "fits.txt", by: ann).status == .created)
        }
    }

    @Test("PARLEY_UPLOAD_TYPES narrows what is accepted")
    func allowedTypes() async throws {
        try await withParley({ $0.files.allowedTypes = ["image/*"] }) { app, _ in
            let ann = try await app.user("ann")
            #expect(try await Self.upload(app, Self.png(width: 2, height: 2), name: "a.png", by: ann).status == .created)
            expectProblem(try await Self.upload(app, Array("just words".utf8), name: "notes.txt", by: ann), .unsupportedMediaType)
        }
        #expect(throws: SettingsError.self) { try Settings.load(from: ["PARLEY_UPLOAD_TYPES": "image/*,application/x-msdownload"]) }
        #expect(try Settings.load(from: ["PARLEY_UPLOAD_TYPES": "image/png, text/plain"]).files.allowedTypes == ["image/png", "text/plain"])
    }

    @Test("a send may carry only the author's own unattached uploads; a refused send leaves no message and no seq behind")
    func attachRules() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let group = try await app.conversation(ann, members: [ben])
            let bens = try #require(try await Self.upload(app, Array("ben's notes".utf8), name: "b.txt", by: ben).string("id"))
            let anns = try #require(try await Self.upload(app, Array("ann's notes".utf8), name: "a.txt", by: ann).string("id"))

            let stolen = try await Self.send(app, in: group, body: "look", attachments: [anns, bens], by: ann)
            expectProblem(stolen, .unprocessableEntity)
            #expect(stolen.fieldErrors == ["attachments": "not_found"])
            #expect(try await app.send(.GET, "v1/conversations/\(group)/messages", token: ann.token).items.isEmpty)
            // The refused send linked nothing: ann's upload is still free to send.
            let first = try await Self.send(app, in: group, body: "notes", attachments: [anns], by: ann)
            #expect(first.status == .created)
            #expect(first["seq"] as? Int == 1, "the refused send used no seq")
            expectProblem(try await Self.send(app, in: group, body: "again", attachments: [anns], by: ann), .unprocessableEntity)

            expectProblem(try await Self.send(app, in: group, body: "x", attachments: ["not-an-id"], by: ann), .unprocessableEntity)
            let tooMany = (0...MessageService.maxAttachments).map { _ in UUID().uuidString }
            #expect(try await Self.send(app, in: group, body: "x", attachments: tooMany, by: ann).fieldErrors == ["attachments": "too_many"])
            expectProblem(try await Self.send(app, in: group, body: "", attachments: [], by: ann), .unprocessableEntity)

            // Files cannot be swapped by an edit.
            let edit = try await app.send(.PATCH, "v1/conversations/\(group)/messages/1", json: #"{"attachments":[]}"#, token: ann.token)
            #expect(edit.fieldErrors == ["attachments": "read_only"])
            // An attached upload is the message's: it cannot be deleted on its own.
            expectProblem(try await app.send(.DELETE, "v1/uploads/\(anns)", token: ann.token), .conflict)
            #expect(try await app.send(.DELETE, "v1/uploads/\(bens)", token: ann.token).status == .notFound)
            #expect(try await app.send(.DELETE, "v1/uploads/\(bens)", token: ben.token).status == .noContent)
        }
    }

    @Test("a keyed send with files is idempotent; the same key with other files is refused")
    func idempotentSendWithFiles() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let group = try await app.conversation(ann)
            let a = try #require(try await Self.upload(app, Array("one".utf8), name: "1.txt", by: ann).string("id"))
            let b = try #require(try await Self.upload(app, Array("two".utf8), name: "2.txt", by: ann).string("id"))
            let first = try await Self.send(app, in: group, body: "files", attachments: [a], by: ann, key: "k-1")
            #expect(first.status == .created)
            let replay = try await Self.send(app, in: group, body: "files", attachments: [a], by: ann, key: "k-1")
            #expect(replay.status == .created)
            #expect(replay.headers.first(name: "Idempotent-Replayed") == "true")
            #expect(replay.string("id") == first.string("id"))
            #expect((replay["attachments"] as? [[String: Any]])?.first?["id"] as? String == a)
            let other = try await Self.send(app, in: group, body: "files", attachments: [b], by: ann, key: "k-1")
            #expect(other.status == .unprocessableEntity || other.status == .conflict, "\(other.body)")
            #expect(try await app.send(.GET, "v1/conversations/\(group)/messages", token: ann.token).items.count == 1)
        }
    }

    @Test("search finds a message by its file's name")
    func searchByName() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("ann")
            let group = try await app.conversation(ann)
            let id = try #require(try await Self.upload(app, Array("q3".utf8), name: "quarterly-forecast.txt", by: ann).string("id"))
            _ = try await Self.send(app, in: group, body: "here you go", attachments: [id], by: ann)
            let found = try await app.send(.GET, "v1/search/messages?q=forecast", token: ann.token)
            #expect(found.items.count == 1, "\(found.body)")
        }
    }

    @Test("deleting a message forgets its files; the sweep then deletes bytes nothing uses, and keeps shared ones",
          arguments: [Settings.Files.Store.disk, .database])
    func deletionAndSweep(store: Settings.Files.Store) async throws {
        try await withParley({ $0.files.store = store }) { app, context in
            let ann = try await app.user("ann"), ben = try await app.user("ben")
            let group = try await app.conversation(ann, members: [ben])
            let shared = Array("the same bytes twice".utf8), alone = Array("only once".utf8)
            let one = try #require(try await Self.upload(app, shared, name: "one.txt", by: ann).string("id"))
            let two = try #require(try await Self.upload(app, shared, name: "two.txt", by: ann).string("id"))
            let three = try #require(try await Self.upload(app, alone, name: "three.txt", by: ann).string("id"))
            _ = try await Self.send(app, in: group, body: "first", attachments: [one, three], by: ann)
            _ = try await Self.send(app, in: group, body: "second", attachments: [two], by: ann)
            let files = try #require(app.storage[FilesDependenciesKey.self])
            let oneID = try #require(UUID(uuidString: one)), threeID = try #require(UUID(uuidString: three))
            let sharedDigest = try #require(try await StoredFile.find(oneID, on: app.db)).digest
            let aloneDigest = try #require(try await StoredFile.find(threeID, on: app.db)).digest

            #expect(try await app.send(.DELETE, "v1/conversations/\(group)/messages/1", token: ann.token).status == .noContent)
            try await Self.followDeletions(app)
            #expect(try await Self.download(app, "v1/uploads/\(one)/content", by: ben).0 == .notFound)
            #expect(try await Self.download(app, "v1/uploads/\(three)/content", by: ann).0 == .notFound, "not even for its uploader")
            #expect(try await Self.download(app, "v1/uploads/\(two)/content", by: ben).2 == shared)

            // Bytes are swept only once they are older than the grace period.
            let maintenance = try #require(app.storage[MaintenanceKey.self])
            _ = await maintenance.run(on: app.db, logger: app.logger)
            #expect(try await files.store.contains(aloneDigest), "too recent to sweep")
            context.clock.advance(by: FileCleanup.sweepGrace + 60)
            let removed = await maintenance.run(on: app.db, logger: app.logger)
            #expect(removed["file bytes"] == 1)
            #expect(!(try await files.store.contains(aloneDigest)))
            #expect(try await files.store.read(sharedDigest) == shared, "still used by the second message")
        }
    }

    @Test("uploads no message took are forgotten after their time")
    func unattachedExpire() async throws {
        try await withParley { app, context in
            let ann = try await app.user("ann")
            let id = try #require(try await Self.upload(app, Array("draft".utf8), name: "draft.txt", by: ann).string("id"))
            #expect(try await app.send(.GET, "v1/uploads", token: ann.token).items.count == 1)
            context.clock.advance(by: JobQueue.seconds(context.settings.files.unattachedLifetime) + 1)
            let removed = await (try #require(app.storage[MaintenanceKey.self])).run(on: app.db, logger: app.logger)
            #expect(removed["unattached uploads"] == 1)
            let fileID = try #require(UUID(uuidString: id))
            #expect(try await StoredFile.find(fileID, on: app.db) == nil)
        }
    }

    @Test("a client that stops mid-upload leaves nothing behind, and what was stored before is intact")
    func clientStopsMidUpload() async throws {
        try await withParley { app, context in
            let ann = try await app.user("ann")
            var events = try #require(app.storage[FilesDependenciesKey.self]).hooks.events.makeAsyncIterator()
            let kept = Array("kept safe".utf8)
            let keptID = try #require(try await Self.upload(app, kept, name: "kept.txt", by: ann).string("id"))
            #expect(await events.next() == .receiving)
            let port = try await RealtimeTests.serve(app)

            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
            let head = "POST /v1/uploads?name=half.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ann.token)\r\n"
                + "Content-Length: 100000\r\n\r\n"
            try await channel.writeAndFlush(ByteBuffer(string: head + String(repeating: "x", count: 30000))).get()
            // Once the server has the first part in staging, hang up.
            #expect(await events.next() == .receiving)
            try await channel.close().get()
            #expect(await events.next() == .discarded)
            #expect(Self.stagingFiles(context.settings).isEmpty)
            #expect(try await app.send(.GET, "v1/uploads", token: ann.token).items.map { $0["id"] as? String } == [keptID])
            #expect(try await Self.download(app, "v1/uploads/\(keptID)/content", by: ann).2 == kept)
            await app.server.shutdown()
        }
    }
}
