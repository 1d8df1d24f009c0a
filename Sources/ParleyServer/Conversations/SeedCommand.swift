import Fluent
import SQLKit
import Vapor

/// `parley seed --users N --conversations N --messages N [--seed S]`
///
/// Fills the database with chat data shaped like real workspaces, for benchmarks and demos:
/// conversation sizes and activity follow a Zipf law (a few busy channels, a long tail of quiet
/// direct messages), message lengths are mostly short with a long tail. Rows go in with
/// multi-row inserts in a few transactions, with their events. Every seeded user's password is
/// printed once at the end.
struct SeedCommand: AsyncCommand {
    struct Signature: CommandSignature {
        @Option(name: "users", help: "How many users (default 200).")
        var users: Int?
        @Option(name: "conversations", help: "How many conversations (default 100).")
        var conversations: Int?
        @Option(name: "messages", help: "How many messages (default 10000).")
        var messages: Int?
        @Option(name: "seed", help: "Random seed, for the same data twice (default 1).")
        var seed: Int?
    }

    var help: String { "Fills the database with realistic users, conversations and messages." }

    static let password = "parley-seed-password"

    func run(using context: CommandContext, signature: Signature) async throws {
        let users = signature.users ?? 200
        let conversations = signature.conversations ?? 100
        let messages = signature.messages ?? 10_000
        guard users >= 2, conversations >= 1, messages >= 0, users <= 1_000_000, conversations <= 1_000_000, messages <= 100_000_000 else {
            context.console.error("Need --users ≥ 2, --conversations ≥ 1 and --messages ≥ 0.")
            throw ExitCode(1)
        }
        guard let accounts = context.application.storage[AccountsKey.self] else { return }
        let start = ContinuousClock.now
        let hash = try await accounts.passwords.hash(Self.password)
        var seeder = Seeder(db: context.application.db, random: SplitMix64(seed: UInt64(signature.seed ?? 1)), now: Date(),
                            writes: context.application.storage[WriteGateKey.self])
        let summary = try await seeder.run(users: users, conversations: conversations, messages: messages, passwordHash: hash)
        let elapsed = ContinuousClock.now - start
        context.console.success("Seeded \(summary.users) users, \(summary.conversations) conversations, \(summary.memberships) memberships, \(summary.messages) messages and \(summary.events) events in \(elapsed.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))).")
        context.console.output("Every seeded user (seed-user-00001 …) has the password \"\(Self.password)\".")
    }
}

extension Sequence {
    func chunked(_ size: Int) -> [[Element]] {
        var chunks: [[Element]] = []
        var current: [Element] = []
        current.reserveCapacity(size)
        for element in self {
            current.append(element)
            if current.count == size {
                chunks.append(current)
                current.removeAll(keepingCapacity: true)
            }
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }
}
