/// The formats `ImageDecoder` recognises from their leading bytes.
enum ImageFormat {
    case png
    case jpeg
    case gif

    init?(sniffing bytes: [UInt8]) {
        if bytes.starts(with: PNGDecoder.signature) {
            self = .png
        } else if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if bytes.starts(with: Array("GIF87a".utf8)) || bytes.starts(with: Array("GIF89a".utf8)) {
            self = .gif
        } else {
            return nil
        }
    }
}
