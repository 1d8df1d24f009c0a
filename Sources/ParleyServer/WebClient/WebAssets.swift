import Crypto
import Foundation
import Vapor

/// The web client's files (`Public/`, bundled with the binary), read once at start-up and
/// served from memory: they are small (the whole client is well under 150 KB), and a
/// fingerprint of their contents lets every asset be cached for a year.
///
/// The fingerprint is one version for the whole client, taken from every file's path and
/// bytes, so the modules' relative imports (`./api.js`) resolve inside the same versioned
/// folder: `/assets/<version>/app.js` imports `/assets/<version>/api.js`. `index.html` names
/// its assets with the placeholder `__ASSETS__`, replaced by `/assets/<version>` here.
struct WebAssets: Sendable {
    struct File: Sendable {
        let body: ByteBuffer
        let contentType: String
        let etag: String
    }

    let version: String
    let index: File
    let files: [String: File]

    static let placeholder = "__ASSETS__"

    /// Reads the client from `directory`; nil when it has no `index.html`.
    static func load(from directory: URL) throws -> WebAssets? {
        let base = directory.standardizedFileURL.resolvingSymlinksInPath()
        guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: [.isRegularFileKey]) else { return nil }
        var raw: [String: Data] = [:]
        for case let url as URL in walker {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let path = String(url.standardizedFileURL.resolvingSymlinksInPath().path.dropFirst(base.path.count + 1))
            guard !path.hasPrefix("."), !path.contains("/.") else { continue }
            raw[path] = try Data(contentsOf: url)
        }
        guard let indexData = raw.removeValue(forKey: "index.html") else { return nil }
        var hasher = SHA256()
        for path in raw.keys.sorted() {
            hasher.update(data: Data(path.utf8))
            hasher.update(data: raw[path]!)
        }
        let version = String(hasher.finalize().hexString.prefix(12))
        let html = String(decoding: indexData, as: UTF8.self).replacingOccurrences(of: placeholder, with: "/assets/\(version)")
        var files: [String: File] = [:]
        for (path, data) in raw { files[path] = file(data, path: path) }
        return WebAssets(version: version, index: file(Data(html.utf8), path: "index.html"), files: files)
    }

    /// The client bundled with the binary.
    static func bundled() throws -> WebAssets? {
        guard let url = Bundle.module.url(forResource: "Public", withExtension: nil) else { return nil }
        return try load(from: url)
    }

    private static func file(_ data: Data, path: String) -> File {
        let digest = SHA256.hash(data: data).hexString.prefix(16)
        return File(body: ByteBuffer(data: data), contentType: contentType(of: path), etag: "\"\(digest)\"")
    }

    static func contentType(of path: String) -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "html": "text/html; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "ico": "image/x-icon"
        case "json", "webmanifest": "application/manifest+json"
        case "txt": "text/plain; charset=utf-8"
        default: "application/octet-stream"
        }
    }
}

struct WebAssetsKey: StorageKey {
    typealias Value = WebAssets
}
