import Fluent
import Foundation
import Vapor

/// Files go when nothing uses them: a deleted message's or conversation's files are forgotten
/// by a durable follower of the event log (named `files`), uploads no message took within
/// their time are forgotten by housekeeping, and then the store's sweep deletes bytes that no
/// file uses any more.
enum FileCleanup {
    static let types: Set<EventType> = [.messageDeleted, .conversationDeleted]
    /// Bytes kept more recently than this are never swept: they may belong to an upload whose
    /// row is being written now.
    static let sweepGrace: TimeInterval = 3600

    static func follower(database: @escaping @Sendable () throws -> any Database, writes: WriteGate, domainEvents: DomainEvents,
                         logger: Logger) -> LogFollower {
        LogFollower(name: "files", types: types, database: database, writes: writes, domainEvents: domainEvents,
                    logger: logger) { events, db in
            try await plan(events, on: db)
        }
    }

    /// The rows a batch of deletions frees; nil when none of those messages carried a file
    /// (most deletions), so the batch costs no transaction.
    static func plan(_ events: [CommittedEvent], on db: any Database) async throws -> LogFollower.Writes? {
        var messageIDs: [UUID] = []
        var conversationIDs: [UUID] = []
        for event in events {
            switch event.type {
            case .messageDeleted:
                if let message = try? EventLog.decoder.decode(MessageDTO.self, from: Data(event.payload.utf8)),
                   let id = UUID(wire: message.id) {
                    messageIDs.append(id)
                }
            case .conversationDeleted:
                conversationIDs.append(event.conversationID)
            default:
                continue
            }
        }
        let messages = try await StoredFile.anyAttached(to: messageIDs, on: db) ? messageIDs : []
        guard !messages.isEmpty || !conversationIDs.isEmpty else { return nil }
        return { [conversationIDs] tx, _ in
            try await StoredFile.deleteAttached(to: messages, on: tx)
            for id in conversationIDs { try await StoredFile.deleteAll(in: id, on: tx) }
        }
    }

    /// Housekeeping: uploads past their time, then bytes nothing uses.
    static func addMaintenance(to maintenance: Maintenance, dependencies: FilesDependencies) {
        let clock = dependencies.clock, writes = dependencies.writes, store = dependencies.store
        let lifetime = dependencies.settings.unattachedLifetime
        maintenance.add("unattached uploads") { db in
            let before = clock.now().addingTimeInterval(-JobQueue.seconds(lifetime))
            return try await db.writeTransaction(writes) { tx in try await StoredFile.deleteUnattached(before: before, on: tx) }
        }
        maintenance.add("file bytes") { db in
            try await store.sweep(before: clock.now().addingTimeInterval(-sweepGrace)) { digests in
                try await StoredFile.inUse(digests, on: db)
            }
        }
    }
}

struct FileCleanupFollowerKey: StorageKey {
    typealias Value = LogFollower
}
