import Foundation

/// UUIDs as text: lower case on the wire, upper case in SQLite (as Foundation's `uuidString`,
/// which is how sqlite-kit stores them), parsed in either case.
///
/// Written by hand: on Linux, Foundation formats `uuidString` with `snprintf` and parses
/// `UUID(uuidString:)` with `sscanf` (about 2 % of an assistant run's CPU between them, and
/// every row read decodes its ids through the parser). The text is the same; only the way to
/// it differs.
extension UUID {
    /// Lower-case, hyphenated: the form every id takes in the API.
    var wire: String { Self.format(uuid, digits: Self.lowerDigits) }

    /// Upper-case, hyphenated: `uuidString`'s form, which SQLite columns hold.
    var stored: String { Self.format(uuid, digits: Self.upperDigits) }

    /// Parses the hyphenated form (8-4-4-4-12 hexadecimal digits) in either case, as
    /// `UUID(uuidString:)` does; nil for anything else.
    init?(wire text: String) {
        var text = text
        let parsed: uuid_t? = text.withUTF8 { utf8 in
            guard utf8.count == 36 else { return nil }
            var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            let complete = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
                var at = 0
                for index in 0..<16 {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        guard utf8[at] == UInt8(ascii: "-") else { return false }
                        at += 1
                    }
                    guard let high = Self.value(of: utf8[at]), let low = Self.value(of: utf8[at + 1]) else { return false }
                    out[index] = high << 4 | low
                    at += 2
                }
                return true
            }
            return complete ? bytes : nil
        }
        guard let parsed else { return nil }
        self.init(uuid: parsed)
    }

    private static let lowerDigits: [UInt8] = Array("0123456789abcdef".utf8)
    private static let upperDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    private static func format(_ uuid: uuid_t, digits: [UInt8]) -> String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                var at = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        out[at] = UInt8(ascii: "-")
                        at += 1
                    }
                    out[at] = digits[Int(byte >> 4)]
                    out[at + 1] = digits[Int(byte & 0x0F)]
                    at += 2
                }
                return at
            }
        }
    }

    private static func value(of digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
