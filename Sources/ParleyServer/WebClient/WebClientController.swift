import Vapor

/// Serves the web client: `GET /` is the page (revalidated on every load, so a new version
/// shows at once), `GET /assets/<version>/<path>` its files (cached for a year: the version
/// changes whenever any file does). Both carry a strict Content-Security-Policy: scripts,
/// styles and connections only from this server, no inline script, no `eval`, no frames.
struct WebClientController: RouteCollection {
    let assets: WebAssets

    /// The policy of the client's pages. `connect-src 'self'` covers this server's own
    /// WebSocket (`ws:`/`wss:` on the same host) in current browsers.
    static let contentSecurityPolicy = [
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'",
        "connect-src 'self'", "manifest-src 'self'", "worker-src 'self'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ].joined(separator: "; ")

    func boot(routes: any RoutesBuilder) throws {
        routes.get(use: page)
        routes.get("assets", ":version", "**", use: asset)
        routes.get("sw.js", use: serviceWorker)
    }

    /// The service worker, at the root so that its scope is the whole client; revalidated (a
    /// browser checks it for updates anyway).
    @Sendable
    func serviceWorker(_ request: Request) async throws -> Response {
        guard let file = assets.files["sw.js"] else { throw Abort(.notFound) }
        return serve(file, to: request, cacheControl: "no-cache")
    }

    @Sendable
    func page(_ request: Request) async throws -> Response {
        serve(assets.index, to: request, cacheControl: "no-cache")
    }

    @Sendable
    func asset(_ request: Request) async throws -> Response {
        let path = request.parameters.getCatchall().joined(separator: "/")
        guard let file = assets.files[path] else { throw Abort(.notFound) }
        // An older page asking for its own version gets today's file, not cached for long.
        let current = request.parameters.get("version") == assets.version
        return serve(file, to: request, cacheControl: current ? "public, max-age=31536000, immutable" : "no-cache")
    }

    private func serve(_ file: WebAssets.File, to request: Request, cacheControl: String) -> Response {
        var headers = HTTPHeaders()
        headers.replaceOrAdd(name: .eTag, value: file.etag)
        headers.replaceOrAdd(name: .cacheControl, value: cacheControl)
        headers.replaceOrAdd(name: "Content-Security-Policy", value: Self.contentSecurityPolicy)
        if request.headers[.ifNoneMatch].contains(where: { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.contains(file.etag) }) {
            return Response(status: .notModified, headers: headers)
        }
        headers.replaceOrAdd(name: .contentType, value: file.contentType)
        return Response(status: .ok, headers: headers, body: .init(buffer: file.body))
    }
}
