/// User text inside a SQL `LIKE` pattern.
enum LikePattern {
    /// The text with LIKE's wildcards removed, so they match nothing special (there is no
    /// portable ESCAPE clause across SQLite and PostgreSQL defaults).
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "%", with: "").replacingOccurrences(of: "_", with: "")
    }
}
