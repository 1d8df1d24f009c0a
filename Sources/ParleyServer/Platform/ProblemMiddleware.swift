import NIOHTTP1
import Vapor

/// The one place errors become responses: every error, thrown anywhere below it, leaves as
/// `application/problem+json` (RFC 9457). Unexpected errors are logged with the request id and
/// answered with a generic 500 that carries no internals.
struct ProblemMiddleware: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        do {
            return try await next.respond(to: request)
        } catch {
            return Self.response(for: error, request: request)
        }
    }

    static func response(for error: any Error, request: Request) -> Response {
        let problem = problem(for: error, request: request)
        var headers = problem.headers
        headers.contentType = .problemJSON
        let body = ProblemDetails(
            type: problem.slug.map { "/problems/\($0)" } ?? "about:blank",
            title: problem.title,
            status: Int(problem.status.code),
            detail: problem.detail,
            instance: request.url.path,
            requestID: request.requestID,
            errors: problem.errors)
        let response = Response(status: problem.status, headers: headers)
        do {
            try response.content.encode(body, as: .json)
            response.headers.contentType = .problemJSON
        } catch {
            response.body = .init(string: #"{"type":"about:blank","title":"Internal Server Error","status":500}"#)
        }
        return response
    }

    private static func problem(for error: any Error, request: Request) -> ProblemError {
        switch error {
        case let problem as ProblemError:
            return problem
        case let error as ValidationError:
            return ProblemError(error)
        case let error as ConversationError:
            return ProblemError(error)
        case let error as AccountError:
            return ProblemError(error)
        case let error as InviteError:
            return ProblemError(error)
        case let error as AssistantError:
            return ProblemError(error)
        case let error as FileError:
            return ProblemError(error)
        case let error as ModerationError:
            return ProblemError(error)
        case let error as ModelRegistryError:
            return ProblemError(error)
        case let decoding as DecodingError:
            return ProblemError(decoding: decoding)
        case is HTTPParserError:
            // The client sent a request that does not parse, or hung up before its body
            // ended: its fault, not the server's (no error log, no 5xx in the metrics).
            request.logger.debug("the request could not be read to its end")
            return .badRequest("The request could not be read to its end.")
        case is RouteNotFound:
            let allowed = allowedMethods(for: request)
            if !allowed.isEmpty {
                return ProblemError(
                    .methodNotAllowed,
                    detail: "\(request.method.rawValue) is not supported here; use \(allowed.joined(separator: ", ")).",
                    headers: ["Allow": allowed.joined(separator: ", ")])
            }
            return ProblemError(.notFound, detail: "No resource at \(request.url.path).")
        case let abort as any AbortError:
            // Vapor's own aborts (413, 415, 400 on a bad URL…) carry safe, fixed reasons.
            let status = abort.status
            var problem = ProblemError(status, detail: status.code >= 500 ? nil : abort.reason)
            problem.headers = abort.headers
            if status.code >= 500 { log(error, request: request) }
            return problem
        default:
            log(error, request: request)
            return ProblemError(.internalServerError, detail: "Something went wrong on our side. Quote the request id if you report it.")
        }
    }

    private static func log(_ error: any Error, request: Request) {
        request.logger.error("unhandled error", metadata: [
            "error": .string(String(reflecting: type(of: error))),
            "description": .string(String(describing: error)),
        ])
    }

    /// The methods registered for this path, so a wrong method gets 405 rather than 404.
    static func allowedMethods(for request: Request) -> [String] {
        let segments = request.url.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var methods = Set<String>()
        for route in request.application.routes.all where matches(route.path, segments) {
            methods.insert(route.method.rawValue)
        }
        return methods.sorted()
    }

    private static func matches(_ pattern: [PathComponent], _ segments: [String]) -> Bool {
        var index = 0
        for component in pattern {
            switch component {
            case .catchall:
                return index < segments.count
            case .anything, .parameter:
                guard index < segments.count else { return false }
            case .constant(let value):
                guard index < segments.count, segments[index] == value else { return false }
            }
            index += 1
        }
        return index == segments.count
    }
}

extension HTTPMediaType {
    static let problemJSON = HTTPMediaType(type: "application", subType: "problem+json", parameters: ["charset": "utf-8"])
}
