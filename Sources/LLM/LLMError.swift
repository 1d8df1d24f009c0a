/// What can go wrong asking a model, in terms a caller can act on.
public enum LLMError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Too many requests; try again after `retryAfter` seconds when the provider said.
    case rateLimited(retryAfter: Double?)
    /// The conversation does not fit the model's context window.
    case contextTooLong(String)
    /// The API key is missing, wrong or not allowed this model.
    case authentication(String)
    /// The provider is down, overloaded or unreachable (a retry may work).
    case unavailable(String)
    /// The reply stopped before it finished (the connection closed mid-stream).
    case streamCut(String)
    /// The model's output could not be used (not JSON where JSON was asked for, no choice…).
    case invalidOutput(String)
    /// The request itself was refused (an unknown model, a bad parameter).
    case badRequest(String)
    /// A time limit passed (connecting, the first token, or the whole reply).
    case timedOut(String)
    /// A token budget has no room for this request.
    case budgetExceeded(String)

    /// Whether trying again may succeed.
    public var isRetryable: Bool {
        switch self {
        case .rateLimited, .unavailable, .streamCut, .timedOut: true
        case .contextTooLong, .authentication, .invalidOutput, .badRequest, .budgetExceeded: false
        }
    }

    public var description: String {
        switch self {
        case .rateLimited(let after): "rate limited" + (after.map { " (retry after \($0) s)" } ?? "")
        case .contextTooLong(let detail): "context too long: \(detail)"
        case .authentication(let detail): "authentication failed: \(detail)"
        case .unavailable(let detail): "model unavailable: \(detail)"
        case .streamCut(let detail): "stream cut: \(detail)"
        case .invalidOutput(let detail): "invalid model output: \(detail)"
        case .badRequest(let detail): "request refused: \(detail)"
        case .timedOut(let detail): "timed out: \(detail)"
        case .budgetExceeded(let detail): "token budget exceeded: \(detail)"
        }
    }
}
