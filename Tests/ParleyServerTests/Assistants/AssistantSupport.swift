import Foundation
import LLM
import NIOConcurrencyHelpers
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

/// A conversation with an assistant in it, its members, and a feed of committed events.
struct AssistantFixture {
    let app: Application
    let admin: TestUser
    let ann: TestUser
    let bob: TestUser
    let assistantID: String
    let conversation: String
    let events: AsyncStream<DomainEvents.Delivery>

    /// Boots the application (job worker and dispatcher included), makes an administrator,
    /// two members and an assistant (`@helper`, provider `test`) in a group with them.
    static func make(_ app: Application, assistant fields: String = "", model: any ChatModel) async throws -> AssistantFixture {
        app.modelCatalog.register("test", model)
        let events = app.domainEvents.subscribe("test")
        try await app.asyncBoot()
        let admin = try await app.user("admin")
        try await (app.db as! any SQLDatabase).raw("UPDATE users SET role = 'admin' WHERE handle = 'admin'").run()
        let ann = try await app.user("ann")
        let bob = try await app.user("bob")
        let created = try await app.send(.POST, "v1/assistants", json: """
            {"handle":"helper","display_name":"Helper","provider":"test","model":"scripted"\(fields.isEmpty ? "" : "," + fields)}
            """, token: admin.token)
        #expect(created.status == .created, "\(created.body)")
        let assistantID = try #require(created.string("id"))
        let assistantUser = TestUser(id: assistantID, handle: "helper", token: "")
        let conversation = try await app.conversation(ann, members: [bob, assistantUser])
        return AssistantFixture(app: app, admin: admin, ann: ann, bob: bob, assistantID: assistantID, conversation: conversation, events: events)
    }

    /// A fixture whose assistant has `policy` (its busy policy) and answers through a
    /// `GateModel`, with a first run ("@helper first", by Ann) already held in the model;
    /// `entered` yields as each later request reaches the model.
    static func busy(_ app: Application, policy: String) async throws
        -> (fixture: AssistantFixture, gate: GateModel, entered: AsyncStream<Void>.Iterator) {
        let gate = GateModel(reply: "done")
        let fixture = try await make(app, assistant: #""busy_policy":"\#(policy)""#, model: gate)
        var entered = gate.entered.makeAsyncIterator()
        try await app.post("@helper first", in: fixture.conversation, by: fixture.ann)
        _ = await entered.next()
        return (fixture, gate, entered)
    }

    /// Waits for the next committed event of one of `types` and returns its data.
    func next(_ types: Set<String>) async throws -> (type: String, data: [String: Any]) {
        for await delivery in events {
            guard case .event(let event) = delivery, types.contains(event.type.rawValue) else { continue }
            let data = try #require(try JSONSerialization.jsonObject(with: Data(event.payload.utf8)) as? [String: Any])
            return (event.type.rawValue, data)
        }
        Issue.record("the event stream ended")
        throw CancellationError()
    }

    /// Waits until a run ends (completed, failed or cancelled) and returns how and its data.
    func runEnd() async throws -> (type: String, data: [String: Any]) {
        try await next(["run.completed", "run.failed", "run.cancelled"])
    }

    func messages(_ user: TestUser? = nil) async throws -> [[String: Any]] {
        try await app.send(.GET, "v1/conversations/\(conversation)/messages?limit=100", token: (user ?? ann).token).items
    }

    func run(_ id: String, as user: TestUser? = nil) async throws -> JSONResponse {
        try await app.send(.GET, "v1/runs/\(id)", token: (user ?? ann).token)
    }

    /// The error `sendFailingAfterward` makes the send's transaction fail with.
    struct Refused: Error {}

    /// Ann sends `body` through the message service with a write after the message that
    /// throws `Refused`, so the send's transaction (the message and whatever reacted to it)
    /// rolls back.
    func sendFailingAfterward(_ body: String) async throws {
        let ann = try #require(UUID(uuidString: self.ann.id))
        let chat = try #require(app.storage[ChatKey.self])
        let access = try await chat.conversations(app.db).access(try #require(UUID(uuidString: conversation)), userID: ann)
        await #expect(throws: Refused.self) {
            _ = try await chat.messages(app.db).send(access, SendMessageRequest(body: body, replyTo: nil), authorID: ann,
                                                     idempotencyKey: nil, alongside: { _, _, _ in throw Refused() })
        }
    }
}

/// A model that waits for the test to let each request through, so a run can be held
/// "in progress" while the test does something else.
final class GateModel: ChatModel {
    private struct State {
        var waiting: [(id: UUID, continuation: CheckedContinuation<Void, Never>)] = []
        var open = 0
    }
    private let state = NIOLockedValueBox(State())
    let entered: AsyncStream<Void>
    private let enteredContinuation: AsyncStream<Void>.Continuation
    let reply: String

    init(reply: String) {
        self.reply = reply
        (entered, enteredContinuation) = AsyncStream<Void>.makeStream()
    }

    /// Lets the oldest waiting request (or the next one to arrive) answer.
    func release() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty { state.open += 1; return nil }
            return state.waiting.removeFirst().continuation
        }
        waiter?.resume()
    }

    private func wait() async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let go = state.withLockedValue { state -> Bool in
                    if state.open > 0 { state.open -= 1; return true }
                    state.waiting.append((id, waiter))
                    return false
                }
                if go { waiter.resume() }
            }
        } onCancel: {
            let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index).continuation
            }
            waiter?.resume()
        }
    }

    func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse {
        try await collect(request, model: "gate")
    }

    func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error> {
        let reply = self.reply
        return AsyncThrowingStream { continuation in
            let task = Task {
                self.enteredContinuation.yield()
                await self.wait()
                if Task.isCancelled { continuation.finish(throwing: CancellationError()); return }
                continuation.yield(.text(reply))
                continuation.yield(.usage(Usage(promptTokens: 10, completionTokens: 2)))
                continuation.yield(.finish(.stop))
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
