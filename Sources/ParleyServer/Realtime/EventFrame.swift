import Fluent
import SQLKit
import Vapor

/// One frame of the event stream, as sent over WebSocket and SSE.
/// Stored events carry their `id`; ephemeral frames (heartbeat) have none.
struct EventFrame: Sendable {
    let id: Int?
    let type: String
    let conversationID: String?
    /// The event's payload, already JSON.
    let data: String
    let at: Date

    /// The frame as JSON, built once however many connections it goes to.
    let text: String
    /// `text` as bytes, shared (not copied) by every WebSocket it is written to.
    let bytes: ByteBuffer

    init(id: Int?, type: String, conversationID: String?, data: String, at: Date) {
        self.id = id
        self.type = type
        self.conversationID = conversationID
        self.data = data
        self.at = at
        self.text = Self.encode(id: id, type: type, conversationID: conversationID, data: data, at: at)
        self.bytes = ByteBuffer(string: text)
    }

    init(_ event: CommittedEvent) {
        self.init(id: event.id, type: event.type.rawValue, conversationID: event.conversationID.wire, data: event.payload,
                  at: event.createdAt)
    }

    /// For frames without an `id` that move the client's cursor (`resync_required`): the SSE
    /// `id:` line, so `EventSource` resumes from here.
    var resumeID: Int?

    static func heartbeat(at now: Date) -> EventFrame {
        EventFrame(id: nil, type: "heartbeat", conversationID: nil, data: "{}", at: now)
    }

    /// The client's cursor is older than the retention window (or unknown here): refetch
    /// state over REST, then continue from `since`, which this stream continues after.
    static func resyncRequired(from since: Int, at now: Date) -> EventFrame {
        var frame = EventFrame(id: nil, type: "resync_required", conversationID: nil, data: #"{"since":\#(since)}"#, at: now)
        frame.resumeID = since
        return frame
    }

    /// `{id, type, conversation_id, data, at}` as one line of JSON.
    func json() -> String { text }

    private static func encode(id: Int?, type: String, conversationID: String?, data: String, at: Date) -> String {
        var out = "{"
        if let id { out += "\"id\":\(id)," }
        out += "\"type\":" + quoted(type)
        if let conversationID { out += ",\"conversation_id\":" + quoted(conversationID) }
        out += ",\"data\":" + data
        out += ",\"at\":" + quoted(at.formatted(.iso8601))
        return out + "}"
    }

    /// The frame as a Server-Sent Event; `id:` lets EventSource resume with Last-Event-ID.
    func sse() -> String {
        ((id ?? resumeID).map { "id: \($0)\n" } ?? "") + "event: \(type)\ndata: \(json())\n\n"
    }

    private static func quoted(_ text: String) -> String {
        var out = ""
        JSONLogHandler.append(string: text, to: &out)
        return out
    }
}
