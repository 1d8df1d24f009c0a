import Logging
import NIOConcurrencyHelpers
import NIOPosix
import VaporCSQLite

/// What a write connection calls after each commit with the WAL's length in frames (pages);
/// true asks the connection to checkpoint there and then. The connection keeps it, so it
/// lives as long as the connection can commit.
final class WALHook: Sendable {
    let committed: @Sendable (Int) -> Bool

    init(_ committed: @escaping @Sendable (Int) -> Bool) { self.committed = committed }
}

/// Copies the WAL into the database file on a thread of its own, so that no commit waits for
/// it.
///
/// By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages: that
/// commit writes a thousand pages into the database file and syncs it before it returns, with
/// the write lock held. On the write gate's connection this was one commit in every eighty
/// or so, and it set the p99 of a send (about 11 ms against a p50 of 3). The write connection
/// now reports the WAL's length after each commit instead (`WALHook`), and past a threshold
/// (below) this checkpointer runs a passive checkpoint on a connection of its own: it copies
/// what no reader still needs, never waits for the writer or a reader, and the writer goes on
/// committing meanwhile.
///
/// The WAL starts from the beginning again at the first commit after a checkpoint that copied
/// all of it. A checkpoint that ran while the writer kept committing copies all but the last
/// few commits, so under unbroken load the WAL would only grow. A little past the threshold
/// (`inlineThreshold`: twice it, or 1,000 pages more, whichever is less) the writer therefore
/// checkpoints in its commit as SQLite would: by then only what came after the background
/// checkpoint is left to copy, at most about 1,000 pages as with SQLite's own default, and
/// the WAL starts over.
///
/// The threshold is 10,000 pages (40 MiB at SQLite's 4 KiB pages), ten times SQLite's own
/// default. Most of what a commit writes is the same few pages again (the end of each index
/// that grows, a conversation's row, the job queue's), and a checkpoint copies each page
/// once however many commits wrote it: checkpointing ten times less often copies and syncs
/// far fewer pages per commit. With the assistants' benchmark the server's CPU per run fell
/// by 7-10 % against 1,000. The WAL file keeps the size it reached (up to `inlineThreshold`
/// pages and what the last commit added) for reuse.
///
/// Written by hand: sqlite-nio offers neither the hook nor a connection that is not in its pool.
final class WALCheckpointer: Sendable {
    /// The WAL's length, in pages, past which a checkpoint runs (see above).
    static let defaultThreshold = 10_000

    /// The WAL's length, in frames, from which a commit asks for a checkpoint.
    let threshold: Int
    /// The WAL's length from which the writer checkpoints in its commit: twice `threshold`,
    /// or 1,000 pages more, whichever is less.
    let inlineThreshold: Int
    private let connection: DirectSQLiteConnection
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let logger: Logger

    private struct State {
        var started = false
        var closed = false
        /// A checkpoint is queued or running.
        var busy = false
        /// A commit asked again while one ran: run another after it.
        var again = false
        var completed = 0
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = NIOLockedValueBox(State())

    init(path: String, logger: Logger, threshold: Int = WALCheckpointer.defaultThreshold) {
        self.threshold = max(1, threshold)
        let (past, overflow) = self.threshold.addingReportingOverflow(min(self.threshold, 1_000))
        inlineThreshold = overflow ? .max : past
        self.logger = logger
        connection = DirectSQLiteConnection(path: path, threadPool: .singleton, logger: logger)
    }

    /// The hook to give the write connection.
    var hook: WALHook { WALHook { [self] frames in walGrew(to: frames) } }

    /// Checkpoints that have finished (including ones SQLite could only do in part).
    var completed: Int { state.withLockedValue { $0.completed } }

    /// Called on the committing thread after each commit: notes the request, and says whether
    /// the writer should checkpoint itself.
    func walGrew(to frames: Int) -> Bool {
        guard frames >= threshold else { return false }
        if frames >= inlineThreshold { return true }
        let submit = state.withLockedValue { state -> Bool in
            guard !state.closed else { return false }
            if state.busy {
                state.again = true
                return false
            }
            state.busy = true
            if !state.started { pool.start() }
            state.started = true
            return true
        }
        if submit { pool.submit { [self] _ in run() } }
        return false
    }

    private func run() {
        while true {
            // A checkpoint queued when the checkpointer closed is not run.
            if state.withLockedValue({ $0.closed }) {
                finished(more: false)
                return
            }
            do {
                let (frames, copied) = try connection.checkpoint()
                logger.debug("WAL checkpoint", metadata: ["wal_frames": .stringConvertible(frames), "checkpointed": .stringConvertible(copied)])
            } catch let error as DirectSQLiteError where error.code & 0xFF == SQLITE_BUSY {
                // The writer's own checkpoint was running; the next commit asks again.
                logger.debug("WAL checkpoint skipped: another is running")
            } catch {
                logger.warning("WAL checkpoint failed", metadata: ["error": .string(String(describing: error))])
            }
            if !finished(more: true) { return }
        }
    }

    /// Notes a finished pass; true when another should run (`more`, and a commit asked again).
    @discardableResult
    private func finished(more: Bool) -> Bool {
        let (again, waiters) = state.withLockedValue { state -> (Bool, [CheckedContinuation<Void, Never>]) in
            if more { state.completed += 1 }
            if more && state.again && !state.closed {
                state.again = false
                return (true, [])
            }
            state.busy = false
            defer { state.idleWaiters = [] }
            return (false, state.idleWaiters)
        }
        for waiter in waiters { waiter.resume() }
        return again
    }

    /// Returns once no checkpoint is queued or running.
    func idle() async {
        await withCheckedContinuation { continuation in
            let now = state.withLockedValue { state -> Bool in
                guard state.busy else { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Lets a running checkpoint finish, then closes the connection; later requests are ignored.
    func close() async {
        let started = state.withLockedValue { state -> Bool in
            state.closed = true
            return state.started
        }
        if started { try? await pool.shutdownGracefully() }
        connection.close()
    }
}
