import Foundation

/// A file's name as people see it, made safe to show and to offer back in
/// `Content-Disposition`: only the last path component (`../../etc/passwd` is `passwd`), no
/// control or bidirectional-override characters, none of the characters Windows refuses, no
/// leading dots, at most 180 characters with the extension kept. Nothing else is read from
/// it: the bytes are stored under their digest, never under this name.
enum FileName {
    static let maxLength = 180

    static func sanitize(_ raw: String?) -> String {
        let last = (raw ?? "").precomposedStringWithCanonicalMapping
            .split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        var name = ""
        var lastWasSpace = false
        for scalar in last.unicodeScalars {
            let forbidden = scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
                || "<>:\"|?*".unicodeScalars.contains(scalar)
            if forbidden { name.unicodeScalars.append("_"); lastWasSpace = false; continue }
            if scalar.properties.isWhitespace {
                if !lastWasSpace { name.unicodeScalars.append(" ") }
                lastWasSpace = true
                continue
            }
            name.unicodeScalars.append(scalar)
            lastWasSpace = false
        }
        name = name.trimmingCharacters(in: .whitespaces)
        while name.hasPrefix(".") { name.removeFirst() }
        name = name.trimmingCharacters(in: .whitespaces)
        if name.count > maxLength {
            let dot = name.lastIndex(of: ".")
            let ext = dot.map { String(name[$0...]) }.flatMap { $0.count <= 16 ? $0 : nil } ?? ""
            name = String(name.prefix(maxLength - ext.count)) + ext
        }
        return name.isEmpty ? "file" : name
    }

    /// `Content-Disposition` for `name`: an ASCII fallback and the UTF-8 name (RFC 6266).
    static func contentDisposition(_ disposition: String, name: String) -> String {
        let ascii = String(name.unicodeScalars.map { $0.isASCII && $0 != "\"" && $0 != "\\" && $0 != "%" ? Character($0) : "_" })
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)...Unicode.Scalar(127)))
        allowed.insert(charactersIn: "!#$&+-.^_`|~")
        let encoded = name.addingPercentEncoding(withAllowedCharacters: allowed) ?? ascii
        return "\(disposition); filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }
}
