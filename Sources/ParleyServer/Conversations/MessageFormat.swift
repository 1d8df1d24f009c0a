import Foundation

/// A message body as a structure clients render as elements: the Markdown subset people type
/// in chat (bold, italic, code spans and blocks, links, lists, quotes) and mentions. Raw HTML
/// is text. Clients render this and never parse the body themselves, so every client shows a
/// message the same way and none can be talked into making markup from it.
///
/// Written by hand: the listed Markdown package (Ink) produces HTML, not a structure, and the
/// subset chat needs is small. Its rules, simplified from CommonMark:
/// - blocks: paragraphs (a newline inside one is a line break), ```` ``` ```` fenced code
///   (with an optional language), `>` quotes (nested up to four deep), `-`/`*`/`+` and `1.`
///   lists (one level; lines indented under an item continue it);
/// - inlines: `` `code` `` (no formatting inside), `**strong**`/`__strong__`,
///   `*emphasis*`/`_emphasis_` (an opening mark is followed by, and a closing one preceded
///   by, a non-space; `_` does not open or close inside a word, so snake_case stays text),
///   `[text](url)` and bare `http(s)://` links (http, https and mailto only; anything else
///   stays text), and `@handle`, `@channel`, `@here`.
struct MessageFormat {
    /// One node of the structure. Blocks: `paragraph`, `code_block`, `quote`, `list`,
    /// `list_item`. Inlines: `text`, `strong`, `emphasis`, `code`, `link`, `mention`,
    /// `line_break`.
    struct Node: Codable, Equatable, Sendable {
        var type: Kind
        var text: String?
        var children: [Node]?
        var url: String?
        var language: String?
        var ordered: Bool?
        /// A mention: the user's id (nil for `@channel` and `@here`) and the handle as written.
        var userID: String?
        var handle: String?

        enum Kind: String, Codable, Sendable {
            case paragraph, quote, list
            case codeBlock = "code_block", listItem = "list_item"
            case text, strong, emphasis, code, link, mention
            case lineBreak = "line_break"
        }

        enum CodingKeys: String, CodingKey {
            case type, text, children, url, language, ordered, handle
            case userID = "user_id"
        }

        static func text(_ text: String) -> Node { Node(type: .text, text: text) }
        static func container(_ type: Kind, _ children: [Node]) -> Node { Node(type: type, children: children) }
    }

    /// Who a message mentions, resolved against the conversation's members.
    struct Mentions: Equatable, Sendable {
        var userIDs: [UUID] = []
        /// `@channel` or `@here`: everyone in the conversation.
        var everyone = false
    }

    static let maxQuoteDepth = 4
    static let maxInlineDepth = 8

    // MARK: Parsing

    /// The structure of `body`. `members` maps lower-cased handles of the conversation's members
    /// to their ids: an `@handle` of a member becomes a mention, any other stays text.
    static func parse(_ body: String, members: [String: UUID] = [:]) -> [Node] {
        blocks(lines(body), members: members, depth: 0)
    }

    /// The mentions in a parsed structure.
    static func mentions(in nodes: [Node]) -> Mentions {
        var found = Mentions()
        var seen = Set<UUID>()
        func walk(_ node: Node) {
            if node.type == .mention {
                if let id = node.userID.flatMap(UUID.init(wire:)) {
                    if seen.insert(id).inserted { found.userIDs.append(id) }
                } else {
                    found.everyone = true
                }
            }
            node.children?.forEach(walk)
        }
        nodes.forEach(walk)
        return found
    }

    /// The structure as one line of plain text (previews, notifications).
    static func plainText(_ nodes: [Node]) -> String {
        var parts: [String] = []
        func walk(_ node: Node) {
            switch node.type {
            case .mention: parts.append("@" + (node.handle ?? ""))
            case .lineBreak: parts.append(" ")
            default: if let text = node.text { parts.append(text) }
            }
            node.children?.forEach(walk)
            if [.paragraph, .quote, .listItem, .codeBlock].contains(node.type) { parts.append(" ") }
        }
        nodes.forEach(walk)
        return parts.joined().split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    /// The handles written as `@handle` outside code, lower-cased (to look up before parsing).
    static func mentionedHandles(in body: String) -> Set<String> {
        var handles = Set<String>()
        func walk(_ node: Node) {
            if node.type == .mention, let handle = node.handle { handles.insert(handle) }
            node.children?.forEach(walk)
        }
        // Parsing with every handle taken as a member's finds exactly the candidates.
        blocks(lines(body), members: nil, depth: 0).forEach(walk)
        return handles.subtracting(["channel", "here"])
    }

    private static func lines(_ body: String) -> [Substring] {
        // Most bodies have no carriage return, and Foundation's replacing costs more than the parse.
        let normalized = body.utf8.contains(UInt8(ascii: "\r"))
            ? body.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n") : body
        return normalized.split(separator: "\n", omittingEmptySubsequences: false)
    }

    /// `members` nil: every `@handle` is a mention (used to collect candidates).
    private static func blocks(_ lines: [Substring], members: [String: UUID]?, depth: Int) -> [Node] {
        var nodes: [Node] = []
        var paragraph: [Substring] = []
        func flush() {
            if !paragraph.isEmpty {
                nodes.append(.container(.paragraph, inlines(paragraph.joined(separator: "\n")[...], members: members)))
                paragraph = []
            }
        }
        var index = 0
        while index < lines.count {
            let line = lines[index]
            let trimmed = line.drop { $0 == " " }
            if trimmed.hasPrefix("```") {
                flush()
                let language = trimmed.dropFirst(3).trimmingCharacters(in: .whitespaces)
                var code: [Substring] = []
                index += 1
                while index < lines.count, !lines[index].drop(while: { $0 == " " }).hasPrefix("```") {
                    code.append(lines[index])
                    index += 1
                }
                index += 1  // the closing fence (or past the end)
                var node = Node(type: .codeBlock, text: code.joined(separator: "\n"))
                if !language.isEmpty, language.count <= 32, !language.contains(" ") { node.language = language }
                nodes.append(node)
                continue
            }
            if trimmed.hasPrefix(">"), depth < maxQuoteDepth {
                flush()
                var quoted: [Substring] = []
                while index < lines.count {
                    let current = lines[index].drop { $0 == " " }
                    guard current.hasPrefix(">") else { break }
                    var rest = current.dropFirst()
                    if rest.first == " " { rest = rest.dropFirst() }
                    quoted.append(rest)
                    index += 1
                }
                nodes.append(.container(.quote, blocks(quoted, members: members, depth: depth + 1)))
                continue
            }
            if let first = listMarker(line) {
                flush()
                var items: [Node] = []
                var current: [Substring] = [line[first.content...]]
                index += 1
                while index < lines.count {
                    let next = lines[index]
                    if let marker = listMarker(next), marker.ordered == first.ordered {
                        items.append(.container(.listItem, inlines(current.joined(separator: "\n")[...], members: members)))
                        current = [next[marker.content...]]
                    } else if next.hasPrefix("  "), !next.trimmingCharacters(in: .whitespaces).isEmpty {
                        current.append(next.drop { $0 == " " })
                    } else {
                        break
                    }
                    index += 1
                }
                items.append(.container(.listItem, inlines(current.joined(separator: "\n")[...], members: members)))
                var list = Node.container(.list, items)
                list.ordered = first.ordered
                nodes.append(list)
                continue
            }
            if trimmed.isEmpty {
                flush()
            } else {
                paragraph.append(line)
            }
            index += 1
        }
        flush()
        return nodes
    }

    /// `- item`, `* item`, `+ item`, `1. item`, `1) item`: whether it is ordered, and where the
    /// item's text starts.
    private static func listMarker(_ line: Substring) -> (ordered: Bool, content: Substring.Index)? {
        var rest = line.drop { $0 == " " }
        guard line.distance(from: line.startIndex, to: rest.startIndex) < 4, let first = rest.first else { return nil }
        if first == "-" || first == "*" || first == "+" {
            rest = rest.dropFirst()
            guard rest.first == " ", rest.dropFirst().contains(where: { $0 != " " }) else { return nil }
            return (false, rest.index(after: rest.startIndex))
        }
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard (1...9).contains(digits.count) else { return nil }
        rest = rest.dropFirst(digits.count)
        guard rest.first == "." || rest.first == ")" else { return nil }
        rest = rest.dropFirst()
        guard rest.first == " ", rest.dropFirst().contains(where: { $0 != " " }) else { return nil }
        return (true, rest.index(after: rest.startIndex))
    }

    // MARK: Inlines

    private static func inlines(_ text: Substring, members: [String: UUID]?, depth: Int = 0) -> [Node] {
        var nodes: [Node] = []
        var pending = ""
        func emit(_ node: Node) {
            if !pending.isEmpty { nodes.append(.text(pending)); pending = "" }
            nodes.append(node)
        }
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            let previous: Character? = i > text.startIndex ? text[text.index(before: i)] : nil
            if c == "\n" {
                emit(Node(type: .lineBreak))
                i = text.index(after: i)
                continue
            }
            if c == "`" {
                let run = text[i...].prefix { $0 == "`" }
                let afterRun = run.endIndex
                if let close = text[afterRun...].range(of: String(run)), text[close.upperBound...].first != "`" {
                    var code = String(text[afterRun..<close.lowerBound])
                    if code.count > 2, code.first == " ", code.last == " " { code = String(code.dropFirst().dropLast()) }
                    if !code.isEmpty { emit(Node(type: .code, text: code)); i = close.upperBound; continue }
                }
                pending += run
                i = afterRun
                continue
            }
            if (c == "*" || c == "_"), depth < maxInlineDepth, let (node, end) = emphasis(text, at: i, members: members, depth: depth) {
                emit(node)
                i = end
                continue
            }
            if c == "[", let (node, end) = link(text, at: i, members: members, depth: depth) {
                emit(node)
                i = end
                continue
            }
            if c == "h" || c == "H" || c == "m", previous.map({ !$0.isLetter && !$0.isNumber }) ?? true, let (url, end) = autolink(text, at: i) {
                emit(Node(type: .link, children: [.text(url)], url: url))
                i = end
                continue
            }
            if c == "@", previous.map({ !isHandleCharacter($0) }) ?? true, let (node, end) = mention(text, at: i, members: members) {
                emit(node)
                i = end
                continue
            }
            pending.append(c)
            i = text.index(after: i)
        }
        if !pending.isEmpty { nodes.append(.text(pending)) }
        return nodes
    }

    /// `**strong**`, `__strong__`, `*emphasis*`, `_emphasis_` starting at `start`.
    private static func emphasis(_ text: Substring, at start: Substring.Index, members: [String: UUID]?, depth: Int) -> (Node, Substring.Index)? {
        let mark = text[start]
        let double = text[start...].prefix(2) == String(repeating: mark, count: 2)
        let delimiter = String(repeating: mark, count: double ? 2 : 1)
        let open = text.index(start, offsetBy: delimiter.count)
        guard open < text.endIndex, !text[open].isWhitespace else { return nil }
        if mark == "_", start > text.startIndex, isWordCharacter(text[text.index(before: start)]) { return nil }
        // The nearest closing mark that is not inside a code span.
        var i = open
        while i < text.endIndex {
            if text[i] == "`", let close = text[text.index(after: i)...].firstIndex(of: "`") {
                i = text.index(after: close)
                continue
            }
            if text[i] == mark {
                // A run of marks closes only when it is exactly the opening one (so `**b**`
                // inside `*…*` is skipped whole), preceded by a non-space, and (for `_`) not
                // followed by a word character.
                let run = text[i...].prefix { $0 == mark }
                let end = run.endIndex
                let wordAfter = mark == "_" && end < text.endIndex && isWordCharacter(text[end])
                if run.count == delimiter.count, i > open, !text[text.index(before: i)].isWhitespace, !wordAfter {
                    let inner = inlines(text[open..<i], members: members, depth: depth + 1)
                    return (.container(double ? .strong : .emphasis, inner), end)
                }
                i = end
                continue
            }
            i = text.index(after: i)
        }
        return nil
    }

    /// `[text](url)` with an http, https or mailto URL.
    private static func link(_ text: Substring, at start: Substring.Index, members: [String: UUID]?, depth: Int) -> (Node, Substring.Index)? {
        guard let closeBracket = text[start...].firstIndex(of: "]"), text[closeBracket...].dropFirst().first == "(",
              let closeParen = text[closeBracket...].firstIndex(of: ")")
        else { return nil }
        let label = text[text.index(after: start)..<closeBracket]
        let url = text[text.index(closeBracket, offsetBy: 2)..<closeParen].trimmingCharacters(in: .whitespaces)
        guard !label.isEmpty, !label.contains("\n"), safeURL(url) else { return nil }
        return (Node(type: .link, children: inlines(label, members: members, depth: depth + 1), url: url), text.index(after: closeParen))
    }

    /// A bare `http://`, `https://` or `mailto:` link, without trailing punctuation.
    private static func autolink(_ text: Substring, at start: Substring.Index) -> (String, Substring.Index)? {
        let rest = text[start...]
        let lower = rest.prefix(8).lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") || lower.hasPrefix("mailto:") else { return nil }
        var end = rest.firstIndex { $0.isWhitespace || $0 == "<" || $0 == ">" || $0 == "\"" } ?? rest.endIndex
        while end > start, let last = text[start..<end].last, ".,;:!?)]}'".contains(last) { end = text.index(before: end) }
        let url = String(text[start..<end])
        guard safeURL(url), url.count > 8 else { return nil }
        return (url, end)
    }

    static func safeURL(_ raw: String) -> Bool {
        guard raw.count <= 2048, !raw.contains(where: { $0.isWhitespace || $0.isNewline }),
              let url = URL(string: raw), let scheme = url.scheme?.lowercased()
        else { return false }
        switch scheme {
        case "http", "https": return url.host?.isEmpty == false
        case "mailto": return raw.count > 7
        default: return false
        }
    }

    /// `@handle` of a member (or any handle while collecting candidates), `@channel`, `@here`.
    private static func mention(_ text: Substring, at start: Substring.Index, members: [String: UUID]?) -> (Node, Substring.Index)? {
        let after = text.index(after: start)
        var end = text[after...].firstIndex { !isHandleCharacter($0) } ?? text.endIndex
        // A handle does not end in `.` or `-` (that is punctuation after it).
        while end > after, let last = text[after..<end].last, last == "." || last == "-" { end = text.index(before: end) }
        let written = String(text[after..<end])
        let handle = written.lowercased()
        guard (3...32).contains(handle.count) || handle == "here" else { return nil }
        if handle == "channel" || handle == "here" { return (Node(type: .mention, handle: handle), end) }
        guard let members else { return (Node(type: .mention, handle: handle), end) }
        guard let id = members[handle] else { return nil }
        return (Node(type: .mention, userID: id.wire, handle: handle), end)
    }

    private static func isHandleCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "_" || c == "." || c == "-")
    }

    private static func isWordCharacter(_ c: Character) -> Bool {
        c.isLetter || c.isNumber || c == "_"
    }
}
