import NIOConcurrencyHelpers
import Fluent
import FluentPostgresDriver
import FluentSQLiteDriver
import SQLKit
import Vapor

/// Lets one SQLite write transaction run at a time in this process, first come first served.
///
/// SQLite has a single writer. Without this, concurrent writers on the pool's connections
/// would wait inside SQLite's busy handler, which polls with sleeps and gives up after
/// `busy_timeout`, so a burst of writers on a loaded machine turns into errors. Queued here,
/// a writer waits without polling and without a deadline. (Hand-written: no listed package
/// offers an async mutex.) Unused on PostgreSQL, which has row locks.
actor WriteLock {
    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            held = false
        } else {
            // Ownership passes straight to the next waiter.
            waiters.removeFirst().resume()
        }
    }
}
