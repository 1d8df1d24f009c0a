import Vapor

/// One invalid input field in a 422 response.
public struct FieldError: Content, Equatable, Sendable {
    public var field: String
    public var code: String
    public var message: String

    public init(field: String, code: String, message: String) {
        self.field = field
        self.code = code
        self.message = message
    }
}

/// The body of every error response: RFC 9457 problem details plus Parley's `request_id`
/// and, for validation failures, the list of field errors.
public struct ProblemDetails: Content, Sendable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String?
    public var instance: String?
    public var requestID: String?
    public var errors: [FieldError]?

    enum CodingKeys: String, CodingKey {
        case type, title, status, detail, instance, errors
        case requestID = "request_id"
    }
}

/// An error a service or controller throws; the problem middleware turns it into a response.
public struct ProblemError: Error, Sendable {
    public var status: HTTPResponseStatus
    /// A short slug; the problem `type` is `/problems/<slug>` (or `about:blank` when nil).
    public var slug: String?
    public var title: String
    public var detail: String?
    public var errors: [FieldError]?
    public var headers: HTTPHeaders

    public init(
        _ status: HTTPResponseStatus, slug: String? = nil, title: String? = nil, detail: String? = nil,
        errors: [FieldError]? = nil, headers: HTTPHeaders = [:]
    ) {
        self.status = status
        self.slug = slug
        self.title = title ?? status.reasonPhrase
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }

    public static func validation(_ errors: [FieldError]) -> ProblemError {
        ProblemError(
            .unprocessableEntity, slug: "validation-failed", title: "Your request has invalid fields",
            detail: errors.map { "\($0.field): \($0.message)" }.joined(separator: "; "), errors: errors)
    }

    public static func validation(field: String, code: String, message: String) -> ProblemError {
        .validation([FieldError(field: field, code: code, message: message)])
    }

    public static func badRequest(_ detail: String) -> ProblemError {
        ProblemError(.badRequest, slug: "bad-request", detail: detail)
    }

    public static func unauthorized(_ detail: String, slug: String = "unauthorized") -> ProblemError {
        ProblemError(.unauthorized, slug: slug, title: "Authentication required", detail: detail,
                     headers: ["WWW-Authenticate": "Bearer"])
    }

    public static func forbidden(_ detail: String, slug: String = "forbidden") -> ProblemError {
        ProblemError(.forbidden, slug: slug, detail: detail)
    }

    public static func notFound(_ detail: String) -> ProblemError {
        ProblemError(.notFound, detail: detail)
    }

    public static func conflict(_ detail: String, errors: [FieldError]? = nil) -> ProblemError {
        ProblemError(.conflict, slug: "conflict", detail: detail, errors: errors)
    }
}

extension Request {
    /// Decodes a JSON body, answering 415 for another media type, 400 for malformed JSON and
    /// 422 (naming the field) for a value of the wrong type.
    public func decodeJSON<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        guard let body = self.body.data, body.readableBytes > 0 else {
            throw ProblemError.badRequest("A JSON request body is required.")
        }
        guard let contentType = headers.contentType,
              contentType.type == "application",
              contentType.subType == "json" || contentType.subType.hasSuffix("+json")
        else {
            throw ProblemError(.unsupportedMediaType, detail: "Send the body as application/json.")
        }
        do {
            return try ContentConfiguration.global.requireDecoder(for: .json).decode(T.self, from: body, headers: headers)
        } catch let error as DecodingError {
            throw ProblemError(decoding: error)
        }
    }
}

extension ProblemError {
    /// Maps a JSON decoding failure to 400 (not JSON, or not an object) or 422 (a field of the wrong type).
    init(decoding error: DecodingError) {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
                .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            self = .badRequest("The request body is not valid JSON.")
        case .typeMismatch(_, let context) where context.codingPath.isEmpty:
            self = .badRequest("The request body must be a JSON object.")
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            self = .validation(field: path(context.codingPath), code: "invalid_type",
                               message: "must be \(Self.describe(type))")
        case .keyNotFound(let key, let context):
            self = .validation(field: path(context.codingPath + [key]), code: "required", message: "is required")
        case .dataCorrupted(let context):
            self = .validation(field: path(context.codingPath), code: "invalid", message: "has an invalid value")
        @unknown default:
            self = .badRequest("The request body could not be read.")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        default: "of type \(type)".replacingOccurrences(of: "Swift.", with: "")
        }
    }
}
