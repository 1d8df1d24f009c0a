/// What a picture's header says, without decoding it.
public enum ImageInfo: Sendable {
    /// A JPEG's EXIF orientation (1...8) from its first APP1 "Exif" segment before the scan;
    /// nil when it has none or is not a JPEG. Orientations 5 to 8 turn the picture a quarter,
    /// so it shows with width and height swapped.
    public static func jpegOrientation(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return nil }
        var index = 2
        while index + 4 <= bytes.count {
            guard bytes[index] == 0xFF else { return nil }
            let marker = bytes[index + 1]
            if marker == 0xFF { index += 1; continue }
            if marker == 0x01 || (0xD0...0xD7).contains(marker) { index += 2; continue }
            if marker == 0xDA || marker == 0xD9 { return nil }
            let length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            guard length >= 2, index + 2 + length <= bytes.count else { return nil }
            if marker == 0xE1, let value = EXIFOrientation.parse(Array(bytes[(index + 4)..<(index + 2 + length)])) {
                return value
            }
            index += 2 + length
        }
        return nil
    }
}
