import Fluent
import Foundation
import SQLKit

/// Replays stored events to a connection that resumes from a cursor.
enum EventReplay {
    static let batchSize = 500

    /// Stored events after `since` up to `end` that the user may see, oldest first, by the
    /// same rule as live delivery (`EventAudience`): membership is followed through the range,
    /// starting from what it was at `since`.
    static func replay(userID: UUID, after since: Int, upTo end: Int, on db: any Database,
                       _ emit: (EventFrame) async throws -> Void) async throws {
        guard since < end else { return }
        let (initial, conversations) = try await EventAudience.memberships(of: userID, after: since, on: db)
        var member = initial
        var cursor = since
        while cursor < end {
            let batch = try await EventLog.events(for: userID, after: cursor, through: end, conversations: conversations,
                                                  limit: batchSize, on: db)
            guard let last = batch.last?.id else { return }
            for event in batch {
                if event.visibleTo != nil {
                    try await emit(EventFrame(event))
                    continue
                }
                let conversation = event.conversationID
                let change = EventAudience.change(event)
                if change == .joined(userID) { member[conversation] = true }
                if member[conversation] == true { try await emit(EventFrame(event)) }
                if change == .left(userID) || change == .ended { member[conversation] = false }
            }
            cursor = last
        }
    }
}
