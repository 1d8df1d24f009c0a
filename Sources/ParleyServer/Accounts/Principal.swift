import Vapor

/// Who is making a request, once authentication has succeeded.
public struct Principal: Authenticatable, Sendable {
    public enum Method: String, Sendable { case bearer, cookie }

    public let userID: UUID
    public let role: String
    public let sessionID: UUID
    public let method: Method
}
