import Fluent
import Vapor

/// What the chat controllers share, built once in `configure`.
struct ChatDependencies: Sendable {
    let clock: AppClock
    let maxMessageLength: Int
    let hooks: MessageService.Hooks
    let writes: WriteGate

    func conversations(_ db: any Database) -> ConversationService {
        ConversationService(db: db, clock: clock, writes: writes)
    }

    func messages(_ db: any Database) -> MessageService {
        MessageService(db: db, clock: clock, maxBodyLength: maxMessageLength, hooks: hooks, writes: writes)
    }
}
