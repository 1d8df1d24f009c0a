import Foundation
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

/// The chat services without HTTP: typed inputs, domain values and typed errors out, and the
/// committed domain events other features subscribe to.
@Suite("Message service")
struct MessageServiceTests {
    struct Setup {
        let chat: ChatDependencies
        let ann: UUID
        let ben: UUID
        let conversation: UUID
    }

    /// Two users (made over HTTP, the only way to make one) and a group of both.
    static func setup(_ app: Application) async throws -> Setup {
        let ann = try await app.user("ann"), ben = try await app.user("ben")
        let id = try await app.conversation(ann, members: [ben])
        let chat = try #require(app.storage[ChatKey.self])
        return Setup(chat: chat, ann: UUID(uuidString: ann.id)!, ben: UUID(uuidString: ben.id)!, conversation: UUID(uuidString: id)!)
    }

    static func body(_ text: String) throws -> SendMessageRequest {
        try JSONDecoder().decode(SendMessageRequest.self, from: Data(#"{"body":\#(jsonString(text))}"#.utf8))
    }

    @Test("a send commits, then reaches subscribers as MessageSent with the log's id; a catch-up from the log decodes the same event")
    func sendPublishesDomainEvent() async throws {
        try await withParley { app, _ in
            let setup = try await Self.setup(app)
            let before = try await EventLog.lastID(on: app.db)
            var deliveries = app.domainEvents.subscribe("test").makeAsyncIterator()

            let access = try await setup.chat.conversations(app.db).access(setup.conversation, userID: setup.ann)
            let sent = try await setup.chat.messages(app.db).send(access, try Self.body("hello"), authorID: setup.ann, idempotencyKey: nil)

            guard case .event(let event)? = await deliveries.next() else {
                Issue.record("no event delivered")
                return
            }
            let message = try #require(try event.decode(MessageSent.self)).message
            #expect(message.id == sent.message.id)
            #expect(message.body == "hello")
            #expect(event.conversationID == setup.conversation)
            #expect(try event.decode(MessageEdited.self) == nil)
            let logged = try await EventLog.events(after: before, on: app.db)
            #expect(logged == [event])
        }
    }

    @Test("a send that fails inside its transaction stores nothing and publishes nothing")
    func failedSendPublishesNothing() async throws {
        try await withParley { app, _ in
            let setup = try await Self.setup(app)
            struct Boom: Error {}
            setup.chat.hooks.afterSeqAssigned = { _ in throw Boom() }
            var deliveries = app.domainEvents.subscribe("test").makeAsyncIterator()
            let access = try await setup.chat.conversations(app.db).access(setup.conversation, userID: setup.ann)
            await #expect(throws: Boom.self) {
                try await setup.chat.messages(app.db).send(access, try Self.body("lost"), authorID: setup.ann, idempotencyKey: nil)
            }
            setup.chat.hooks.afterSeqAssigned = nil
            // The next delivery is the next send's, not the failed one's.
            _ = try await setup.chat.messages(app.db).send(access, try Self.body("kept"), authorID: setup.ann, idempotencyKey: nil)
            guard case .event(let event)? = await deliveries.next() else {
                Issue.record("no event delivered")
                return
            }
            #expect(try event.decode(MessageSent.self)?.message.body == "kept")
            #expect(try event.decode(MessageSent.self)?.message.seq == 1)
        }
    }

    @Test("a subscriber that falls behind is told from which event on it missed some")
    func overflowSaysMissed() async throws {
        try await withParley { app, _ in
            let setup = try await Self.setup(app)
            let stream = app.domainEvents.subscribe("slow", bufferSize: 2)
            let access = try await setup.chat.conversations(app.db).access(setup.conversation, userID: setup.ann)
            var ids: [Int] = []
            for n in 1...4 {
                _ = try await setup.chat.messages(app.db).send(access, try Self.body("m\(n)"), authorID: setup.ann, idempotencyKey: nil)
                ids.append(try await EventLog.lastID(on: app.db))
            }
            var deliveries = stream.makeAsyncIterator()
            #expect(await deliveries.next() == .event(try #require(try await EventLog.events(after: ids[0] - 1, limit: 1, on: app.db).first)))
            _ = await deliveries.next()
            // Room again: the next publish first says what was dropped.
            _ = try await setup.chat.messages(app.db).send(access, try Self.body("m5"), authorID: setup.ann, idempotencyKey: nil)
            #expect(await deliveries.next() == .missed(after: ids[1]))
        }
    }

    @Test("the services answer in typed errors: not the author, not a member, a message that changed, a conversation one cannot see")
    func typedErrors() async throws {
        try await withParley { app, _ in
            let setup = try await Self.setup(app)
            let cat = UUID(uuidString: try await app.user("cat").id)!
            let conversations = setup.chat.conversations(app.db), messages = setup.chat.messages(app.db)
            let annAccess = try await conversations.access(setup.conversation, userID: setup.ann)
            let sent = try await messages.send(annAccess, try Self.body("mine"), authorID: setup.ann, idempotencyKey: nil)
            let benAccess = try await conversations.access(setup.conversation, userID: setup.ben)

            await #expect(throws: ConversationError.notTheAuthor) {
                try await messages.edit(benAccess, seq: sent.message.seq, try Self.body("his"), mode: .mergePatch, ifMatch: nil, editorID: setup.ben)
            }
            await #expect(throws: ConversationError.messageChanged) {
                try await messages.edit(annAccess, seq: sent.message.seq, try Self.body("new"), mode: .mergePatch,
                                        ifMatch: "\"stale\"", editorID: setup.ann)
            }
            await #expect(throws: ConversationError.messageNotFound) {
                try await messages.message(annAccess, seq: 99, viewer: setup.ann)
            }
            await #expect(throws: ConversationError.conversationNotFound) {
                try await conversations.access(setup.conversation, userID: cat)
            }
            await #expect(throws: ValidationError.self) {
                try await messages.send(annAccess, try Self.body("   "), authorID: setup.ann, idempotencyKey: nil)
            }
        }
    }

    @Test("a send's statements: session, access, begin, the insert (which takes the seq on SQLite), event, commit; PostgreSQL takes the seq first, and the event order lock with the event")
    func sendStatementCount() async throws {
        try await withParley(logLevel: .debug) { app, context in
            let ann = try await app.user("ann")
            let id = try await app.conversation(ann)
            // The first message a node sees in a conversation also reads, once, whether the
            // conversation is a direct one with an assistant (for the runs it would start).
            try await app.post("first", in: id, by: ann)
            context.logs.reset()
            let response = try await app.post("counted", in: id, by: ann)
            #expect(response.status == .created)
            let statements = context.logs.sqlStatements
            // Both count BEGIN and COMMIT, and a trigger moves the author's read marker. On
            // SQLite the insert takes the seq (a trigger moves the conversation's); PostgreSQL
            // takes it first by updating the conversation row, and its event insert also takes
            // the event order lock and queues the notification. (Before the seams: 10 and 10;
            // before the triggers: 8 and 9; before the lock joined the insert: 6 and 8.)
            let expected = TestDatabase.name == "sqlite" ? 6 : 7
            #expect(statements.count == expected, "\(statements.joined(separator: "\n"))")
        }
    }
}
