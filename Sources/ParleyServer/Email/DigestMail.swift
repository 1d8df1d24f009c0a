import Foundation

/// The e-mail digest of what needs someone while they were away: one plain-text message
/// (RFC 5322 with MIME, UTF-8 in base64, the subject as an RFC 2047 encoded word when it is
/// not ASCII), listing each notification with who, where, the excerpt and a link.
struct DigestMail: Sendable, Equatable {
    struct Item: Sendable, Equatable {
        var title: String
        var excerpt: String?
        var link: String
        var at: Date
    }

    var from: String
    var to: String
    var recipientName: String
    var items: [Item]
    /// The server's address as people reach it, without a trailing slash.
    var baseURL: String
    var date: Date
    var messageID: String

    var subject: String {
        items.count == 1 ? "\(items[0].title) on Parley" : "\(items.count) things need you on Parley"
    }

    var text: String {
        var lines = ["Hi \(recipientName),", "", "While you were away:", ""]
        let format = Date.FormatStyle(date: .abbreviated, time: .shortened, timeZone: TimeZone(identifier: "UTC") ?? .current)
        for item in items {
            lines.append("* \(item.title) (\(item.at.formatted(format)) UTC)")
            if let excerpt = item.excerpt, !excerpt.isEmpty { lines.append("  \"\(excerpt)\"") }
            lines.append("  \(item.link)")
            lines.append("")
        }
        lines.append("Open Parley: \(baseURL)/")
        lines.append("")
        lines.append("-- ")
        lines.append("Parley sends this digest when notifications stay unread. Turn it off in your inbox in Parley.")
        return lines.joined(separator: "\n")
    }

    /// The whole message, CRLF line ends.
    var rendered: String {
        let body = Data(text.replacingOccurrences(of: "\n", with: "\r\n").utf8).base64EncodedString()
        var chunks: [String] = []
        var rest = Substring(body)
        while !rest.isEmpty {
            chunks.append(String(rest.prefix(76)))
            rest = rest.dropFirst(76)
        }
        let headers = [
            "From: Parley <\(from)>",
            "To: \(Self.encodedWord(recipientName)) <\(to)>",
            "Subject: \(Self.encodedWord(subject))",
            "Date: \(Self.rfc5322Date(date))",
            "Message-ID: <\(messageID)>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
            "Auto-Submitted: auto-generated",
        ]
        return (headers + [""] + chunks).joined(separator: "\r\n") + "\r\n"
    }

    /// Text as it may stand in a header: as it is when plain printable ASCII, else an RFC 2047
    /// encoded word (UTF-8, base64). Line breaks never reach a header.
    static func encodedWord(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        if flat.unicodeScalars.allSatisfy({ (0x20...0x7E).contains($0.value) }) && !flat.contains("=?") {
            return flat.contains(where: { "()<>@,;:\\\".[]".contains($0) }) ? "\"" + flat.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"") + "\"" : flat
        }
        return "=?utf-8?B?\(Data(flat.utf8).base64EncodedString())?="
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}
