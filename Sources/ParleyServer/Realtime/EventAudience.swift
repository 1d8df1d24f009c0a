import Fluent
import Foundation
import SQLKit

/// Who may see a conversation's events: the members it has when each event happens. A
/// member's own `member.joined` is the first event of the conversation they see and their own
/// `member.left` the last; after `conversation.deleted` nobody sees more. Live delivery
/// (`EventHub`) and replay (`EventReplay`) both follow this rule, through `Membership`'s
/// queries and the log's member events.
enum EventAudience {
    enum Change: Equatable {
        case joined(UUID)
        case left(UUID)
        case ended
    }

    static let memberTypes: [EventType] = [MemberJoined.type, MemberLeft.type]

    /// How an event changes its conversation's audience, if it does.
    static func change(_ event: CommittedEvent) -> Change? {
        switch event.type {
        case MemberJoined.type: (try? event.decode(MemberJoined.self))?.flatMap { $0.member.user }.map(Change.joined)
        case MemberLeft.type: (try? event.decode(MemberLeft.self))?.flatMap { $0.member.user }.map(Change.left)
        case ConversationDeleted.type: .ended
        default: nil
        }
    }

    /// The members of a conversation just before event `eventID`, reconstructed exactly: the
    /// current members and the newest event id come from one snapshot, then the member
    /// events from `eventID` up to that id are undone, newest first.
    static func members(of conversationID: UUID, before eventID: Int, on db: any Database) async throws -> Set<UUID> {
        var (members, horizon) = try await Membership.members(of: conversationID, withLogPositionOn: db)
        let end = horizon ?? eventID
        guard end >= eventID else { return members }
        for event in try await EventLog.memberChanges(in: conversationID, ids: eventID...end, types: memberTypes, on: db) {
            switch change(event) {
            case .joined(let user): members.remove(user)
            case .left(let user): members.insert(user)
            default: break
            }
        }
        return members
    }

    /// Where `userID` stood just after event `since`: whether they were a member of each
    /// conversation whose events they may replay, and the SQL condition naming those
    /// conversations (their current ones and any they joined or left since).
    static func memberships(of userID: UUID, after since: Int, on db: any Database)
        async throws -> (member: [UUID: Bool], conversations: SQLQueryString)
    {
        let own = try await EventLog.events(naming: userID, types: memberTypes, after: since, on: db)
            .filter { change($0) == .joined(userID) || change($0) == .left(userID) }
        var member: [UUID: Bool] = [:]
        for id in try await Membership.conversationIDs(of: userID, on: db) { member[id] = true }
        var decided = Set<UUID>()
        for event in own where decided.insert(event.conversationID).inserted {
            // The first own member event after `since` says what the user was before it.
            member[event.conversationID] = event.type == MemberLeft.type
        }
        var condition = Membership.conversationCondition(memberID: userID)
        let extra = Set(own.map(\.conversationID))
        if !extra.isEmpty {
            condition = condition + " OR conversation_id IN (" + extra.map { "\(bind: $0)" as SQLQueryString }.joined(separator: ", ") + ")"
        }
        return (member, condition)
    }
}
