/// What can go wrong in conversations and messages, in the feature's own words.
/// `ProblemMiddleware` maps it to problem+json (a conversation the caller may not see is
/// "not found", never "forbidden", so ids leak nothing).
enum ConversationError: Error, Equatable, Sendable {
    case conversationNotFound
    case memberNotFound
    case messageNotFound
    /// Writing needs membership (a non-member may read a public channel).
    case notAMember
    case notAManager(String)
    case notTheOwner(String)
    case notTheAuthor
    /// Deleting someone else's message without managing the conversation.
    case mayNotDelete
    case roleTooHigh(String)
    /// The request conflicts with the resource's state (a deleted message, a direct conversation).
    case conflict(String)
    /// `If-Match` names a version the message no longer has.
    case messageChanged
    /// An `Idempotency-Key` sent again with a different request.
    case idempotencyKeyReused
}
