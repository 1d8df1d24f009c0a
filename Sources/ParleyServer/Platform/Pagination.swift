import Fluent
import SQLKit
import Vapor

/// A page of a cursor-paginated list.
struct Page<Item: Content>: Content {
    var items: [Item]
    /// Pass as `cursor` for the next page; null on the last page.
    var nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case items
        case nextCursor = "next_cursor"
    }
}

/// Opaque cursor for the conversation list: the last item's activity time and id.
enum ActivityCursor {
    static func encode(_ date: Date, _ id: UUID) -> String {
        Data("\(date.timeIntervalSince1970.bitPattern)|\(id.wire)".utf8).base64URLEncodedString()
    }

    static func decode(_ cursor: String) -> (Date, UUID)? {
        guard let data = Data(base64URLEncoded: cursor), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: "|")
        guard parts.count == 2, let bits = UInt64(parts[0]), let id = UUID(wire: String(parts[1])) else { return nil }
        let seconds = Double(bitPattern: bits)
        guard seconds.isFinite else { return nil }
        return (Date(timeIntervalSince1970: seconds), id)
    }
}

/// Opaque cursor for the channel directory: the last item's title and id.
enum TitleCursor {
    static func encode(_ title: String, _ id: UUID) -> String {
        Data("\(id.wire)|\(title)".utf8).base64URLEncodedString()
    }

    static func decode(_ cursor: String) -> (String, UUID)? {
        guard let data = Data(base64URLEncoded: cursor), let text = String(data: data, encoding: .utf8),
              let bar = text.firstIndex(of: "|"), let id = UUID(wire: String(text[..<bar]))
        else { return nil }
        return (String(text[text.index(after: bar)...]), id)
    }
}
