import Fluent
import Foundation
import NIOConcurrencyHelpers
import SQLKit
import Testing
@testable import ParleyServer

/// SQLite's group commit: transactions that queue while another commits are committed
/// together, each still atomic and alone in failing.
@Suite("Group commit")
struct GroupCommitTests {
    struct Probe: DomainEvent {
        static let type = EventType("test.probe")
        let n: Int
    }

    struct Boom: Error, Equatable {}

    @Test("transactions queued behind one are committed together; the one that fails leaves nothing and fails alone; the others run and commit once each and their events reach the observers in log order",
          arguments: [false, true])
    func batches(ownConnection: Bool) async throws {
        try await withParley { app, context in
            guard case .sqlite(let path) = context.settings.database else { return }  // PostgreSQL needs no gate.
            let everyoneQueued = Latch()
            let queuedBehind = 40
            // Fluent's pooled connection, or Parley's own write connection (as `parley serve` on a file).
            let writer = ownConnection ? DirectSQLiteConnection(path: path, threadPool: app.threadPool, logger: app.logger) : nil
            defer { writer?.close() }
            let gate = WriteGate(serialize: true, writer: writer, maxBatch: 16) { queued in
                if queued == queuedBehind { everyoneQueued.open() }
            }
            let seen = NIOLockedValueBox<[Int]>([])
            let runs = NIOLockedValueBox<[Int: Int]>([:])
            gate.onCommit { commit in seen.withLockedValue { $0 += commit.events.map(\.id) } }
            let conversation = try #require(UUID(uuidString: try await app.conversation(try await app.user("ann"))))
            let db = app.db
            func write(_ n: Int, failing: Bool = false) async throws -> Int {
                try await db.writeTransaction(gate) { tx, outbox in
                    runs.withLockedValue { $0[n, default: 0] += 1 }
                    try await outbox.record(Probe(n: n), in: conversation, at: Date())
                    if failing { throw Boom() }
                    return n
                }
            }
            // The first holds the gate until forty more wait behind it.
            let firstRunning = Latch()
            async let first: Int = db.writeTransaction(gate) { tx, outbox in
                try await outbox.record(Probe(n: 0), in: conversation, at: Date())
                firstRunning.open()
                await everyoneQueued.wait()
                return 0
            }
            await firstRunning.wait()
            let results = await withTaskGroup(of: (Int, Result<Int, any Error>).self) { group in
                for n in 1...queuedBehind {
                    group.addTask {
                        do { return (n, .success(try await write(n, failing: n == 7))) } catch { return (n, .failure(error)) }
                    }
                }
                var results: [Int: Result<Int, any Error>] = [:]
                for await (n, result) in group { results[n] = result }
                return results
            }
            #expect(try await first == 0)
            for n in 1...queuedBehind {
                switch results[n] {
                case .success(let value): #expect(n != 7 && value == n)
                case .failure(let error): #expect(n == 7 && error is Boom, "\(n): \(error)")
                case nil: Issue.record("no result for \(n)")
                }
            }
            let committed = try #require(gate.groupCommit).committed
            #expect(committed.largest == 16, "the forty were committed in batches of up to sixteen")
            #expect(committed.batches < queuedBehind)

            // In the log: each probe once, the failed one never.
            let logged = try await EventLog.events(after: 0, limit: 1000, on: db).filter { $0.type == Probe.type }
            let probes = try logged.map { try #require(try $0.decode(Probe.self)).n }
            #expect(probes.sorted() == Array(0...queuedBehind).filter { $0 != 7 })
            #expect(Set(probes).count == probes.count, "none twice")
            // Each closure ran once: the one that failed was rolled back to its savepoint and the
            // rest of its batch went on (a rerun would replay a Fluent model's save against an
            // in-memory state the rollback did not undo).
            #expect(runs.withLockedValue { $0 } == Dictionary(uniqueKeysWithValues: (1...queuedBehind).map { ($0, 1) }))
            #expect(seen.withLockedValue { $0 } == logged.map(\.id), "observers see every commit, in log order")
        }
    }

    struct Echo: DomainEvent {
        static let type = EventType("test.echo")
        let n: Int
    }

    @Test("a reaction writes in the transaction that records its event: its writes commit or roll back with it, a reaction that throws fails it, and after-commit work runs only after a commit")
    func reactions() async throws {
        try await withParley { app, context in
            // On SQLite the four wait behind a first transaction, so they commit as one batch,
            // each in a savepoint; PostgreSQL runs them as they come.
            let sqlite = context.settings.database.isSQLite
            let everyoneQueued = Latch()
            let gate = WriteGate(serialize: sqlite) { queued in if queued == 4 { everyoneQueued.open() } }
            let afterCommit = NIOLockedValueBox<[Int]>([])
            gate.react(to: Probe.type) { event, conversationID, outbox in
                let n = try #require(event as? Probe).n
                if n == 3 { throw Boom() }
                try await outbox.record(Echo(n: n), in: conversationID, at: Date())
                outbox.afterCommit { afterCommit.withLockedValue { $0.append(n) } }
            }
            let conversation = try #require(UUID(uuidString: try await app.conversation(try await app.user("ann"))))
            let db = app.db
            @Sendable func write(_ n: Int) async -> Result<Void, any Error> {
                do {
                    try await db.writeTransaction(gate) { _, outbox in
                        try await outbox.record(Probe(n: n), in: conversation, at: Date())
                        if n == 2 { throw Boom() }
                    }
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            var results: [Int: Result<Void, any Error>] = [:]
            if sqlite {
                let firstRunning = Latch()
                async let first: Void = db.writeTransaction(gate) { _, _ in
                    firstRunning.open()
                    await everyoneQueued.wait()
                }
                await firstRunning.wait()
                results = await withTaskGroup(of: (Int, Result<Void, any Error>).self) { group in
                    for n in 1...4 { group.addTask { (n, await write(n)) } }
                    return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
                }
                try await first
                #expect(try #require(gate.groupCommit).committed.largest == 4, "the four shared a commit")
            } else {
                for n in 1...4 { results[n] = await write(n) }
            }
            for n in 1...4 {
                switch results[n] {
                case .success: #expect(n == 1 || n == 4)
                case .failure(let error): #expect((n == 2 || n == 3) && error is Boom, "\(n): \(error)")
                case nil: Issue.record("no result for \(n)")
                }
            }
            let logged = try await EventLog.events(after: 0, limit: 1000, on: app.db)
                .filter { [Probe.type, Echo.type].contains($0.type) }
                .map { "\($0.type)" + ($0.type == Probe.type ? "\(try #require(try $0.decode(Probe.self)).n)" : "\(try #require(try $0.decode(Echo.self)).n)") }
            // Each reaction's event right after its own, in whichever order the two committed.
            #expect(logged == ["test.probe1", "test.echo1", "test.probe4", "test.echo4"]
                    || logged == ["test.probe4", "test.echo4", "test.probe1", "test.echo1"], "\(logged)")
            #expect(afterCommit.withLockedValue { $0 }.sorted() == [1, 4])
        }
    }
}
