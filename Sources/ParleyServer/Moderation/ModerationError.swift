/// What can go wrong in moderation, in its own words (`ProblemMiddleware` maps it).
enum ModerationError: Error, Equatable, Sendable {
    /// Moderators (and administrators) only.
    case notAModerator
    case messageNotFound
    /// The message was decided already (removed, or deleted by its author).
    case alreadyDecided
}
