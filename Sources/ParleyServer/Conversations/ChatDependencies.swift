import Fluent
import Vapor

/// What the chat controllers share, built once in `configure`.
struct ChatDependencies: Sendable {
    let clock: AppClock
    let maxMessageLength: Int
    let hooks: MessageService.Hooks
    let writes: WriteGate
    /// Where messages' files are kept (set by the Files feature in `configure`).
    var attachments: any MessageAttachments = NoAttachments()
    /// What every message passes before it is stored (set by the Moderation feature).
    var screening: any MessageScreening = NoScreening()

    func conversations(_ db: any Database) -> ConversationService {
        ConversationService(db: db, clock: clock, writes: writes)
    }

    func messages(_ db: any Database) -> MessageService {
        MessageService(db: db, clock: clock, maxBodyLength: maxMessageLength, hooks: hooks, writes: writes, attachments: attachments,
                       screening: screening)
    }
}
