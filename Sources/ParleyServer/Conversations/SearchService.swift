import Fluent
import SQLKit
import Vapor

/// Full-text search over the messages a caller can read (their conversations and public
/// channels): SQLite FTS5 with bm25 ranking, or PostgreSQL `tsvector` with `ts_rank`.
struct SearchService: Sendable {
    let db: any Database

    static let markStart = "\u{E000}"
    static let markEnd = "\u{E001}"

    func search(_ q: String?, conversationID rawConversation: String?, userID: UUID, cursor: String?, limit: Int) async throws -> Page<SearchHitDTO> {
        var validator = Validator()
        let text = validator.text(q, "q", length: 1...200)
        let terms = text.map(Self.terms) ?? []
        if text != nil, terms.isEmpty { validator.add("q", "no_terms", "must contain at least one letter or digit") }
        var conversationID: UUID?
        if let rawConversation {
            if let id = UUID(wire: rawConversation) { conversationID = id }
            else { validator.add("conversation_id", "invalid", "must be a conversation id") }
        }
        var offset = 0
        if let cursor {
            if let value = Int(cursor), value >= 0, value <= 10_000 { offset = value }
            else { validator.add("cursor", "invalid", "is not a cursor this server issued") }
        }
        try validator.check()
        guard let sql = db as? any SQLDatabase else { return Page(items: [], nextCursor: nil) }

        struct Row: Decodable { let id: UUID; let snippet: String; let rank: Double }
        let scope: SQLQueryString = conversationID.map { "AND m.conversation_id = \(bind: $0)" } ?? ""
        let readable: SQLQueryString = """
            JOIN conversations c ON c.id = m.conversation_id AND c.deleted_at IS NULL
            LEFT JOIN memberships mb ON mb.conversation_id = m.conversation_id AND mb.user_id = \(bind: userID)
            """
        // A held message is found only by its author.
        let visible: SQLQueryString = """
            (mb.id IS NOT NULL OR (c.kind = 'channel' AND c.visibility = 'public'))
              AND (m.moderation_state IS NULL OR m.moderation_state <> 'held' OR m.author_id = \(bind: userID))
            """
        let rows: [Row]
        if sql.dialect.name == "sqlite" {
            // Each term quoted (so user text is never FTS syntax), the last one as a prefix.
            let match = terms.enumerated().map { index, term in
                "\"\(term)\"" + (index == terms.count - 1 ? " *" : "")
            }.joined(separator: " ")
            rows = try await sql.raw("""
                SELECT m.id AS id,
                       snippet(messages_fts, 0, char(57344), char(57345), '…', 16) AS snippet,
                       -bm25(messages_fts) AS rank
                FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid
                \(readable)
                WHERE messages_fts MATCH \(bind: match) AND m.deleted_at IS NULL AND \(visible) \(scope)
                ORDER BY rank DESC, m.created_at DESC
                LIMIT \(bind: limit + 1) OFFSET \(bind: offset)
                """).all(decoding: Row.self)
        } else {
            let query = terms.enumerated().map { index, term in
                term + (index == terms.count - 1 ? ":*" : "")
            }.joined(separator: " & ")
            rows = try await sql.raw("""
                SELECT m.id AS id,
                       ts_headline('simple', replace(replace(m.body, '<', chr(57346)), '>', chr(57347)), q.query, 'StartSel=' || chr(57344) || ', StopSel=' || chr(57345) || ', MaxWords=24, MinWords=8') AS snippet,
                       ts_rank(m.search, q.query)::float8 AS rank
                FROM messages m CROSS JOIN to_tsquery('simple', \(bind: query)) AS q(query)
                \(readable)
                WHERE m.search @@ q.query AND m.deleted_at IS NULL AND \(visible) \(scope)
                ORDER BY rank DESC, m.created_at DESC
                LIMIT \(bind: limit + 1) OFFSET \(bind: offset)
                """).all(decoding: Row.self)
        }
        let page = Array(rows.prefix(limit))
        let messages = try await Message.query(on: db).filter(\.$id ~~ page.map(\.id)).all()
        let dtos = try await MessageService.dtos(for: messages, viewer: userID, on: db)
        let byID = Dictionary(dtos.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let items = page.compactMap { row in
            byID[row.id.wire].map { SearchHitDTO(message: $0, snippet: Self.highlight(row.snippet), rank: row.rank) }
        }
        return Page(items: items, nextCursor: rows.count > limit ? String(offset + limit) : nil)
    }

    /// Letters and digits only, lower-cased, so no user text is ever query syntax.
    static func terms(_ text: String) -> [String] {
        text.lowercased()
            .split { !($0.isLetter || $0.isNumber) }
            .map(String.init)
            .prefix(16)
            .map { $0 }
    }

    /// HTML-escapes a snippet and turns the database's private-use markers into `<mark>`.
    static func highlight(_ snippet: String) -> String {
        var out = ""
        for character in snippet {
            if let entity = Markup.entity(for: character) {
                out += entity
                continue
            }
            switch character {
            case Character(markStart): out += "<mark>"
            case Character(markEnd): out += "</mark>"
            // PostgreSQL's headline parser drops anything that looks like an HTML tag, so angle
            // brackets travel through it as private-use stand-ins.
            case "\u{E002}": out += "&lt;"
            case "\u{E003}": out += "&gt;"
            default: out.append(character)
            }
        }
        return out
    }
}
