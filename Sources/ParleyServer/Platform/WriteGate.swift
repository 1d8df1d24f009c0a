import Fluent
import AgentGraphSQL
import NIOConcurrencyHelpers
import SQLKit

/// How this process writes: on SQLite, the queue every write transaction waits in, to be
/// committed in groups; after every commit, what the transaction left in its outbox goes to
/// the observers (the event hub, the domain-event subscribers, the job workers).
final class WriteGate: Sendable {
    /// Present on SQLite only: where write transactions queue, to be committed in groups.
    private let group = NIOLockedValueBox<GroupCommit?>(nil)
    private let observers = NIOLockedValueBox<[@Sendable (Outbox.Commit) -> Void]>([])
    private let reactions = NIOLockedValueBox<Outbox.Reactions>([:])

    /// - Parameters:
    ///   - serialize: queue write transactions and commit them in groups (SQLite).
    ///   - writer: the connection groups commit on (SQLite with a database file); without one,
    ///     they take a connection from Fluent's pool.
    init(serialize: Bool, writer: DirectSQLiteConnection? = nil, maxBatch: Int = 32, onQueue: (@Sendable (Int) -> Void)? = nil) {
        if serialize {
            group.withLockedValue { $0 = GroupCommit(gate: self, writer: writer, maxBatch: maxBatch, onQueue: onQueue) }
        }
    }

    var groupCommit: GroupCommit? { group.withLockedValue { $0 } }

    /// Calls `observer` after every committed write transaction, on the committing task.
    func onCommit(_ observer: @escaping @Sendable (Outbox.Commit) -> Void) {
        observers.withLockedValue { $0.append(observer) }
    }

    func committed(_ commit: Outbox.Commit) {
        for observer in observers.withLockedValue({ $0 }) { observer(commit) }
        for action in commit.afterCommit { action() }
    }

    /// Calls `reaction` inside every write transaction that records an event of `type`, right
    /// after the event, so what it writes commits with the event or not at all: the seam for
    /// a feature whose writes must never exist without another's (a run and the message that
    /// asked for it). A reaction that throws fails the transaction that recorded the event.
    /// Register before serving; transactions opened without the gate run no reactions.
    func react(to type: EventType, _ reaction: @escaping Outbox.Reaction) {
        reactions.withLockedValue { $0[type, default: []].append(reaction) }
    }

    /// A new transaction's outbox, carrying the registered reactions.
    func outbox(on db: any Database) -> Outbox {
        Outbox(db: db, reactions: reactions.withLockedValue { $0 })
    }
}

extension Database {
    /// A transaction for changes that record no events.
    func writeTransaction<T: Sendable>(_ gate: WriteGate?, _ closure: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        try await writeTransaction(gate) { tx, _ in try await closure(tx) }
    }

    /// A transaction for changes, with the outbox its events and jobs go into. On SQLite it
    /// queues at the gate and commits with whatever queued with it (`GroupCommit`), in a
    /// transaction begun `IMMEDIATE`, taking the write lock before the first statement: a
    /// deferred transaction that reads and then writes fails with SQLITE_BUSY_SNAPSHOT when
    /// another connection commits in between. On PostgreSQL this is Fluent's transaction. The
    /// closure must not open a transaction of its own; it runs once. After the commit, the gate's observers get what the
    /// outbox holds.
    func writeTransaction<T: Sendable>(_ gate: WriteGate?,
                                       _ closure: @escaping @Sendable (any Database, Outbox) async throws -> T) async throws -> T {
        guard let sql = self as? any SQLDatabase, sql.dialect.name == "sqlite" else {
            let opened = NIOLockedValueBox<Outbox?>(nil)
            do {
                let (result, outbox) = try await transaction { tx in
                    let outbox = gate?.outbox(on: tx) ?? Outbox(db: tx)
                    opened.withLockedValue { $0 = outbox }
                    return (try await closure(tx, outbox), outbox)
                }
                gate?.committed(outbox.commit)
                return result
            } catch {
                opened.withLockedValue { $0 }?.rolledBack()
                throw error
            }
        }
        if let group = gate?.groupCommit {
            return try await group.run(on: self, closure)
        }
        // Without a gate (a command's one-off write): one transaction of its own.
        let (result, outbox) = try await withConnection { connection in
            guard let sql = connection as? any SQLDatabase else { throw StorageError.notSQL }
            let outbox = gate?.outbox(on: connection) ?? Outbox(db: connection)
            try await sql.raw("BEGIN IMMEDIATE").run()
            do {
                let result = try await closure(connection, outbox)
                try await sql.raw("COMMIT").run()
                return (result, outbox)
            } catch {
                try? await sql.raw("ROLLBACK").run()
                outbox.rolledBack()
                throw error
            }
        }
        gate?.committed(outbox.commit)
        return result
    }
}

/// Another library's write transactions (AgentGraph's checkpoints) run as this process's own:
/// queued at the write gate and committed with the rest, on the write connection. On SQLite a
/// second writing connection would compete with the gate's for the file's write lock, and
/// wait on it by sleeping.
struct GatedTransactions: SQLTransactionRunner {
    let database: @Sendable () throws -> any Database
    let writes: WriteGate

    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await database().writeTransaction(writes) { tx in
            guard let sql = tx as? any SQLDatabase else { throw StorageError.notSQL }
            return try await body(sql)
        }
    }
}
