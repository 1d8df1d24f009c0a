/// Escaping text for HTML and XML (search snippets, SVG charts).
enum Markup {
    /// The entity a character stands as in markup text or an attribute; nil for one that
    /// needs none.
    static func entity(for character: Character) -> String? {
        switch character {
        case "&": "&amp;"
        case "<": "&lt;"
        case ">": "&gt;"
        case "\"": "&quot;"
        case "'": "&#39;"
        default: nil
        }
    }

    /// `text` with every character that needs it replaced by its entity.
    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if let entity = entity(for: character) { escaped += entity } else { escaped.append(character) }
        }
        return escaped
    }
}
