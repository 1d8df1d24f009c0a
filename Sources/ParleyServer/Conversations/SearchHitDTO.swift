import Vapor

struct SearchHitDTO: Content {
    var message: MessageDTO
    /// The matching passage, HTML-escaped, with matches wrapped in `<mark>…</mark>`.
    var snippet: String
    var rank: Double
}
