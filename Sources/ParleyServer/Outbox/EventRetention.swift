import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// Keeps the event log to a window (`PARLEY_EVENT_RETENTION`, 7 days by default) and
/// remembers how far it has been cut, so a client whose cursor points into the cut part is
/// told to resync instead of silently missing events.
///
/// The cut point (`pruned_through`) is stored, not inferred from `MIN(id)`: PostgreSQL
/// sequences skip ids after rolled-back transactions, so "the oldest id left" cannot tell a
/// pruned event from one that never existed.
struct EventRetention: Sendable {
    let window: Duration
    let clock: AppClock
    let writes: WriteGate
    /// Events deleted per transaction, so a large backlog never holds the writer for long.
    var batchSize = 5_000

    /// Where a client's cursor stands against the log.
    enum Cursor: Equatable {
        /// Every event after it is still stored: replay.
        case replayable
        /// Events after it were pruned, or it is newer than anything stored (a cursor from
        /// another database): the client must refetch.
        case stale
    }

    static func check(since: Int, on db: any Database) async throws -> Cursor {
        guard let sql = db as? any SQLDatabase else { return .replayable }
        struct Row: Decodable { let last: Int?; let pruned: Int? }
        let row = try await sql.raw("""
            SELECT (SELECT MAX(id) FROM events) AS last,
                   (SELECT pruned_through FROM event_horizon WHERE id = 1) AS pruned
            """).first(decoding: Row.self)
        let pruned = row?.pruned ?? 0
        let last = max(row?.last ?? 0, pruned)
        return since < pruned || since > last ? .stale : .replayable
    }

    /// Deletes events older than the window, oldest first, in batches. Returns how many went.
    @discardableResult
    func prune(on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase else { return 0 }
        let now = clock.now()
        let cutoff = now.addingTimeInterval(-TimeInterval(window.components.seconds))
        struct Row: Decodable { let last: Int? }
        // Ids follow commit order, so everything up to the newest expired id can go.
        guard let through = try await sql.raw("SELECT MAX(id) AS last FROM events WHERE created_at < \(bind: cutoff)")
            .first(decoding: Row.self)?.last
        else { return 0 }
        var deleted = 0
        while true {
            let count: Int = try await db.writeTransaction(writes) { tx in
                guard let sql = tx as? any SQLDatabase else { return 0 }
                struct Oldest: Decodable { let first: Int? }
                guard let first = try await sql.raw("SELECT MIN(id) AS first FROM events").first(decoding: Oldest.self)?.first,
                      first <= through
                else { return 0 }
                let upper = min(through, first + batchSize - 1)
                struct Gone: Decodable { let n: Int }
                // (SQLite has no DELETE inside WITH, so count first: same transaction, same rows.)
                let gone = try await sql.raw("SELECT COUNT(*) AS n FROM events WHERE id <= \(bind: upper)")
                    .first(decoding: Gone.self)?.n ?? 0
                try await sql.raw("DELETE FROM events WHERE id <= \(bind: upper)").run()
                try await sql.raw("""
                    UPDATE event_horizon SET pruned_through = \(bind: upper) WHERE id = 1 AND pruned_through < \(bind: upper)
                    """).run()
                return max(gone, 1)
            }
            if count == 0 { break }
            deleted += count
        }
        return deleted
    }
}
