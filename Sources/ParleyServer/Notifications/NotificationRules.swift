import Foundation

/// Who a new message notifies, and why: the whole policy in one pure function.
///
/// For each human member other than the author, in order:
/// - level `nothing`: no one is told anything;
/// - muted: only a mention of them by name (`@them`) gets through;
/// - a mention of them, or `@channel`/`@here`: `mention`;
/// - a direct conversation (level `all`): `direct`;
/// - a reply in a thread they started or replied in: `thread_reply`;
/// - level `all`: `message`; otherwise nothing.
enum NotificationRules {
    struct Recipient: Equatable, Sendable {
        let userID: UUID
        let kind: UserNotification.Kind
    }

    static func recipients(authorID: UUID, kind conversationKind: Conversation.Kind, mentions: MessageFormat.Mentions,
                           isReply: Bool, threadParticipants: Set<UUID>,
                           members: [Membership.NotificationSetting]) -> [Recipient] {
        members.compactMap { member -> Recipient? in
            guard member.userID != authorID, member.level != .nothing else { return nil }
            let named = mentions.userIDs.contains(member.userID)
            if member.muted && !named { return nil }
            if named || mentions.everyone { return Recipient(userID: member.userID, kind: .mention) }
            if conversationKind == .direct, member.level == .all { return Recipient(userID: member.userID, kind: .direct) }
            if isReply, threadParticipants.contains(member.userID) { return Recipient(userID: member.userID, kind: .threadReply) }
            if member.level == .all { return Recipient(userID: member.userID, kind: .message) }
            return nil
        }
    }
}
