import Foundation
import Logging
import NIOPosix
import SQLiteNIO
import Testing
@testable import ParleyServer

/// The write connection's WAL is copied into the database file by the checkpointer's thread,
/// never inside a commit.
@Suite("WAL checkpoints off the commit path")
struct WALCheckpointerTests {
    private let logger = Logger(label: "test.wal")

    /// A fresh SQLite file (WAL mode, as every Parley connection sets it) with one table.
    private func withFile(_ body: (String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-wal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory.appendingPathComponent("wal.sqlite").path)
    }

    /// Commits `count` transactions of one 6 KB row each (three pages: the row and its overflow).
    private func write(_ count: Int, on writer: DirectSQLiteConnection) throws {
        for n in 0..<count {
            _ = try writer.execute("BEGIN IMMEDIATE", [])
            _ = try writer.execute("INSERT INTO wal_probe (n, bytes) VALUES (?1, ?2)", [.integer(n), .blob(ByteBuffer(repeating: 7, count: 6_000))])
            _ = try writer.execute("COMMIT", [])
        }
    }

    private func size(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    private func rows(_ path: String) throws -> Int {
        let reader = DirectSQLiteConnection(path: path, threadPool: .singleton, logger: logger, readOnly: true)
        defer { reader.close() }
        return try reader.execute("SELECT COUNT(*) AS n FROM wal_probe", []).first?.decode(column: "n", as: Int.self) ?? -1
    }

    @Test("with the hook a writer never checkpoints inside a commit; without it SQLite does, past 1,000 pages")
    func noInlineCheckpoint() async throws {
        for hooked in [true, false] {
            try await withFile { path in
                // A threshold that is never reached: nothing but the writer could copy the WAL.
                let checkpointer = WALCheckpointer(path: path, logger: logger, threshold: .max)
                let writer = DirectSQLiteConnection(path: path, threadPool: .singleton, logger: logger,
                                                    walHook: hooked ? checkpointer.hook : nil)
                _ = try writer.execute("CREATE TABLE wal_probe (n INTEGER NOT NULL, bytes BLOB NOT NULL)", [])
                let before = try size(path)
                try write(400, on: writer)
                #expect(try rows(path) == 400)
                if hooked {
                    #expect(try size(path) == before, "the database file is as it was: every page is still in the WAL")
                    #expect(try size(path + "-wal") > 1_000 * 4_096)
                } else {
                    #expect(try size(path) > before + 100 * 4_096, "SQLite's automatic checkpoint copied the WAL in a commit")
                }
                writer.close()
                await checkpointer.close()
            }
        }
    }

    @Test("past its threshold the checkpointer copies the WAL into the file while the writer goes on")
    func checkpointsInBackground() async throws {
        try await withFile { path in
            let checkpointer = WALCheckpointer(path: path, logger: logger, threshold: 60)
            let writer = DirectSQLiteConnection(path: path, threadPool: .singleton, logger: logger, walHook: checkpointer.hook)
            _ = try writer.execute("CREATE TABLE wal_probe (n INTEGER NOT NULL, bytes BLOB NOT NULL)", [])
            let before = try size(path)
            // About 105 frames: past the threshold, short of where the writer would copy itself.
            try write(30, on: writer)
            await checkpointer.idle()
            #expect(checkpointer.completed >= 1)
            #expect(try size(path) > before + 20 * 4_096, "the checkpointer copied pages into the database file")
            #expect(try rows(path) == 30)
            try write(70, on: writer)
            #expect(try rows(path) == 100)
            await checkpointer.idle()
            writer.close()
            await checkpointer.close()
        }
    }

    @Test("a commit is told to checkpoint itself only from twice the threshold (1,000 pages past a large one), and one that does lets the WAL start over")
    func inlineFromTwiceTheThreshold() async throws {
        let checkpointer = WALCheckpointer(path: "/nonexistent/never-opened.sqlite", logger: logger, threshold: .max)
        #expect(checkpointer.walGrew(to: 10) == false)
        #expect(checkpointer.inlineThreshold == .max)
        try await withFile { path in
            let decisions = WALCheckpointer(path: path, logger: logger, threshold: 60)
            #expect(decisions.walGrew(to: 59) == false)
            #expect(decisions.walGrew(to: 119) == false, "past the threshold: the background checkpointer's turn")
            #expect(decisions.walGrew(to: 120) == true)
            await decisions.idle()
            await decisions.close()
            // A large threshold: the writer copies what is left 1,000 pages past it, not at twice it.
            let large = WALCheckpointer(path: path, logger: logger, threshold: 10_000)
            #expect(large.inlineThreshold == 11_000)
            #expect(large.walGrew(to: 10_999) == false)
            #expect(large.walGrew(to: 11_000) == true)
            await large.idle()
            await large.close()

            // A hook that asks every commit from 40 frames on to checkpoint itself, with no
            // background checkpointer: only the commits' own checkpoints can restart the WAL.
            let writer = DirectSQLiteConnection(path: path, threadPool: .singleton, logger: logger,
                                                walHook: WALHook { frames in frames >= 40 })
            _ = try writer.execute("CREATE TABLE wal_probe (n INTEGER NOT NULL, bytes BLOB NOT NULL)", [])
            let before = try size(path)
            try write(100, on: writer)
            let (frames, _) = try writer.checkpoint()
            #expect(frames < 60, "the WAL holds \(frames) frames after about 350 were written")
            #expect(try size(path) > before + 50 * 4_096, "the commits copied the WAL into the file")
            #expect(try rows(path) == 100)
            writer.close()
        }
    }
}
