import Fluent
import Foundation
import Testing
import VaporTesting
@testable import ParleyServer

@Suite("Seed data")
struct SeedTests {
    @Test("seeding makes consistent data: gap-free seqs, last_seq, members, skewed sizes")
    func seed() async throws {
        try await withParley { app, _ in
            var seeder = Seeder(db: app.db, random: SplitMix64(seed: 7), now: Date(timeIntervalSince1970: 1_790_000_000))
            let summary = try await seeder.run(users: 40, conversations: 30, messages: 2_000, passwordHash: "x")
            #expect(summary.users == 40)
            #expect(try await User.query(on: app.db).count() == 40)
            #expect(try await Message.query(on: app.db).count() == 2_000)
            #expect(try await Event.query(on: app.db).count() == 2_000)

            var sizes: [Int] = []
            for conversation in try await Conversation.query(on: app.db).all() {
                let seqs = try await Message.query(on: app.db).filter(\.$conversation.$id == conversation.id!).all().map(\.seq).sorted()
                #expect(seqs == Array(stride(from: 1, through: conversation.lastSeq, by: 1)))
                sizes.append(seqs.count)
                let members = try await Membership.query(on: app.db).filter(\.$conversation.$id == conversation.id!).count()
                #expect(members >= 2)
                if conversation.kind == .direct { #expect(members == 2) }
            }
            // Zipf: the busiest conversation holds far more than an even share.
            #expect((sizes.max() ?? 0) > 3 * 2_000 / sizes.count)
        }
    }
}
