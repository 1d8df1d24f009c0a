import Foundation

/// What a file is, judged from its first bytes, never from the name or the type a client
/// claims: a client that calls an HTML page `photo.png` gets it sniffed as HTML (and refused
/// unless HTML is allowed). Images also give their dimensions from their headers.
///
/// Hand-written: no listed package sniffs media types or reads image headers.
struct FileType: Equatable, Sendable {
    /// The media type the file is stored and served as.
    var mediaType: String
    /// Pixel size, for images whose header gives it.
    var width: Int?
    var height: Int?

    /// How many leading bytes `sniff` looks at (enough for every signature and image header
    /// here; a JPEG's size can sit after large metadata segments, which `jpegSize` reads on
    /// from the file itself).
    static let headerLength = 4096

    static let octetStream = "application/octet-stream"

    /// Types served inline (shown in the page); everything else downloads as an attachment.
    static let inlineTypes: Set<String> = ["image/png", "image/jpeg", "image/gif", "image/webp"]

    /// What is allowed when the operator says nothing: pictures, PDF, plain text and zip
    /// containers (office documents are zips). Never HTML, SVG or anything a browser could run.
    static let defaultAllowed: Set<String> = [
        "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain", "application/zip",
    ]

    /// Every type `sniff` can answer.
    static let known: Set<String> = [
        "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "application/zip", "text/plain",
        "text/html", "image/svg+xml", "application/xml", octetStream,
    ]

    /// A media type `sniff` can answer, or `image/*`.
    static func isKnownPattern(_ pattern: String) -> Bool {
        pattern == "image/*" || known.contains(pattern)
    }

    /// Whether `allowed` (types, or `image/*` for the raster images Parley knows) lets this
    /// type in. `image/*` never admits SVG, which can carry script.
    func isAllowed(by allowed: [String]) -> Bool {
        allowed.contains(mediaType) || (allowed.contains("image/*") && Self.inlineTypes.contains(mediaType))
    }

    /// Sniffs `head` (the file's first bytes; the whole file when shorter than `headerLength`).
    static func sniff(_ head: [UInt8]) -> FileType {
        let bytes = head[...]
        func starts(_ signature: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + signature.count && Array(bytes[offset..<(offset + signature.count)]) == signature
        }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            var type = FileType(mediaType: "image/png")
            // IHDR is the first chunk: length (4), "IHDR" (4), width (4), height (4).
            if starts(Array("IHDR".utf8), at: 12), bytes.count >= 24 {
                type.width = Int(bigEndian32(head, at: 16))
                type.height = Int(bigEndian32(head, at: 20))
            }
            return type
        }
        if starts([0xFF, 0xD8, 0xFF]) {
            var type = FileType(mediaType: "image/jpeg")
            if let size = jpegSize(head) { (type.width, type.height) = (size.width, size.height) }
            return type
        }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) {
            var type = FileType(mediaType: "image/gif")
            if bytes.count >= 10 {
                type.width = Int(head[6]) | Int(head[7]) << 8
                type.height = Int(head[8]) | Int(head[9]) << 8
            }
            return type
        }
        if starts(Array("RIFF".utf8)), starts(Array("WEBP".utf8), at: 8) {
            var type = FileType(mediaType: "image/webp")
            if let size = webpSize(head) { (type.width, type.height) = (size.width, size.height) }
            return type
        }
        if starts(Array("%PDF-".utf8)) { return FileType(mediaType: "application/pdf") }
        if starts([0x50, 0x4B, 0x03, 0x04]) || starts([0x50, 0x4B, 0x05, 0x06]) { return FileType(mediaType: "application/zip") }
        if looksLikeMarkup(head) { return FileType(mediaType: markupType(head)) }
        if isText(head) { return FileType(mediaType: "text/plain") }
        return FileType(mediaType: octetStream)
    }

    private static func bigEndian32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    /// A JPEG's size from its first start-of-frame segment (SOF0-SOF15 but DHT, JPG and DAC),
    /// walking the segments from the start.
    static func jpegSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        var index = 2
        while index + 9 < bytes.count {
            guard bytes[index] == 0xFF else { return nil }
            let marker = bytes[index + 1]
            if marker == 0xFF { index += 1; continue }
            // Markers without a length.
            if marker == 0x01 || (0xD0...0xD7).contains(marker) { index += 2; continue }
            let length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            guard length >= 2 else { return nil }
            if (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) {
                let height = Int(bytes[index + 5]) << 8 | Int(bytes[index + 6])
                let width = Int(bytes[index + 7]) << 8 | Int(bytes[index + 8])
                return width > 0 && height > 0 ? (width, height) : nil
            }
            if marker == 0xDA { return nil }  // start of scan before any frame header
            index += 2 + length
        }
        return nil
    }

    private static func webpSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        guard bytes.count >= 30 else { return nil }
        let chunk = String(decoding: bytes[12..<16], as: UTF8.self)
        switch chunk {
        case "VP8 ":
            // Lossy: a key frame's 14-bit width and height after its start code.
            guard bytes[23] == 0x9D, bytes[24] == 0x01, bytes[25] == 0x2A else { return nil }
            return ((Int(bytes[26]) | Int(bytes[27]) << 8) & 0x3FFF, (Int(bytes[28]) | Int(bytes[29]) << 8) & 0x3FFF)
        case "VP8L":
            guard bytes[20] == 0x2F else { return nil }
            let bits = UInt32(bytes[21]) | UInt32(bytes[22]) << 8 | UInt32(bytes[23]) << 16 | UInt32(bytes[24]) << 24
            return (Int(bits & 0x3FFF) + 1, Int((bits >> 14) & 0x3FFF) + 1)
        case "VP8X":
            let width = Int(bytes[24]) | Int(bytes[25]) << 8 | Int(bytes[26]) << 16
            let height = Int(bytes[27]) | Int(bytes[28]) << 8 | Int(bytes[29]) << 16
            return (width + 1, height + 1)
        default:
            return nil
        }
    }

    /// Markup a browser would run or render (HTML, XML, SVG), after optional whitespace and
    /// a byte-order mark: the patterns browsers themselves sniff for.
    private static func looksLikeMarkup(_ bytes: [UInt8]) -> Bool {
        markupStart(bytes) != nil
    }

    private static func markupType(_ bytes: [UInt8]) -> String {
        guard let start = markupStart(bytes) else { return octetStream }
        let rest = String(decoding: bytes[start...].prefix(512), as: UTF8.self).lowercased()
        if rest.contains("<svg") { return "image/svg+xml" }
        if rest.hasPrefix("<?xml") { return "application/xml" }
        return "text/html"
    }

    private static let markupPrefixes = [
        "<!doctype html", "<html", "<head", "<body", "<script", "<iframe", "<style", "<title", "<svg", "<?xml", "<!--",
        "<img", "<div", "<table", "<a ", "<p>", "<br", "<b>", "<h1", "<font", "<object", "<embed",
    ]

    private static func markupStart(_ bytes: [UInt8]) -> Int? {
        var index = 0
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        while index < bytes.count, [0x09, 0x0A, 0x0C, 0x0D, 0x20].contains(bytes[index]) { index += 1 }
        let lead = String(decoding: bytes[index...].prefix(16), as: UTF8.self).lowercased()
        return markupPrefixes.contains(where: { lead.hasPrefix($0) }) ? index : nil
    }

    /// UTF-8 without NUL or other control characters than tab, line feeds and form feed. A
    /// multi-byte character cut off where the sniffed head ends still counts as text.
    private static func isText(_ bytes: [UInt8]) -> Bool {
        if bytes.contains(where: { ($0 < 0x20 && ![0x09, 0x0A, 0x0C, 0x0D].contains($0)) || $0 == 0x7F }) { return false }
        for cut in 0...min(3, bytes.count) where String(validating: bytes.dropLast(cut), as: UTF8.self) != nil {
            return cut == 0 || bytes.count >= headerLength
        }
        return false
    }
}
