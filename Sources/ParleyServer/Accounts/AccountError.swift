/// What can go wrong with accounts, sign-in and sessions, in the feature's own words.
/// `ProblemMiddleware` maps it to problem+json.
enum AccountError: Error, Equatable, Sendable {
    /// The handle or email is taken (the fields say which).
    case accountExists([FieldError])
    case emailTaken
    case tooManyAttempts(retryAfter: Int)
    case invalidCredentials
    case invalidRefreshToken
    /// A rotated refresh token came back: the session has been ended.
    case refreshTokenReused
    case userNotFound
}
