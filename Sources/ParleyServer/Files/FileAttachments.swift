import Fluent
import Foundation

/// How messages carry uploads (the Conversations feature's `MessageAttachments` seam): in the
/// send's transaction, the author's unattached uploads are linked to the new message.
struct FileAttachments: MessageAttachments {
    func attach(_ ids: [UUID], to messageID: UUID, in conversationID: UUID, by authorID: UUID,
                tx: any Database) async throws -> [MessageAttachment] {
        let files = try await StoredFile.attach(ids, uploadedBy: authorID, to: messageID, in: conversationID, on: tx)
        guard files.count == ids.count else {
            // Not the author's upload, gone, or already on another message: the send rolls back.
            let missing = Set(ids).subtracting(files.map(\.id)).map(\.wire).sorted()
            throw ValidationError(field: "attachments", code: "not_found",
                                  message: "no unattached upload of yours with id \(missing.joined(separator: ", "))")
        }
        return files.map(\.attachment)
    }
}
