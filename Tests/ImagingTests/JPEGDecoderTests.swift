import Imaging
import Testing

/// JPEG decodes are compared with Pillow's (libjpeg-turbo, islow IDCT, fancy upsampling):
/// the mean absolute error per channel must be at most 1.0 and no sample may be off by more than 24.
@Suite("JPEG decoding")
struct JPEGDecoderTests {
    static let meanTolerance = 1.0
    static let maxTolerance = 24

    @Test("is close to Pillow", arguments: Fixtures.withSuffix(".jpg"))
    func matchesReference(_ fixture: Fixture) throws {
        let image = try ImageDecoder.decode(try fixture.bytes)
        #expect(image.width == fixture.width)
        #expect(image.height == fixture.height)
        let difference = Difference(image, try fixture.expected)
        #expect(difference.meanAbsolute <= Self.meanTolerance, "\(difference)")
        #expect(difference.maxAbsolute <= Self.maxTolerance, "\(difference)")
    }

    @Test func coversTheRequiredVariants() {
        let names = Fixtures.withSuffix(".jpg").map(\.file)
        for part in ["ycc444", "ycc422", "ycc420", "gray", "restart", "progressive", "exif-orientation6", "sof1"] {
            #expect(names.contains { $0.contains(part) }, "no fixture for \(part)")
        }
    }

    @Test("the orientation tag is read from the header alone")
    func orientationFromHeader() throws {
        for orientation in 1...8 {
            let fixture = try #require(Fixtures.all.first { $0.file.hasPrefix("exif-orientation\(orientation)-") })
            #expect(ImageInfo.jpegOrientation(try fixture.bytes) == orientation)
        }
        let plain = try #require(Fixtures.all.first { $0.file.hasPrefix("gray-") && $0.file.hasSuffix(".jpg") })
        #expect(ImageInfo.jpegOrientation(try plain.bytes) == nil)
        #expect(ImageInfo.jpegOrientation(PNGEncoder.encode(RGBAImage(width: 1, height: 1))) == nil)
    }

    @Test func orientationSixRotatesClockwise() throws {
        let fixture = try #require(Fixtures.all.first { $0.file.hasPrefix("exif-orientation6") })
        let image = try ImageDecoder.decode(try fixture.bytes)
        // Stored 40x24 (landscape); shown as 24x40.
        #expect(image.width == 24 && image.height == 40)
    }

    @Test("refuses what it does not decode", arguments: [
        (UInt8(0xC3), "lossless JPEG"), (UInt8(0xC9), "arithmetic-coded JPEG"),
        (UInt8(0xCA), "arithmetic-coded JPEG"), (UInt8(0xC5), "hierarchical JPEG"),
    ])
    func refusesOtherProcesses(marker: UInt8, message: String) throws {
        var bytes = try Fixtures.bytes("ycc420-64x48.jpg")
        let sof = try #require(sofOffset(bytes))
        bytes[sof + 1] = marker
        #expect(throws: ImageError.unsupported(message)) { try ImageDecoder.decode(bytes) }
    }

    @Test func refusesTwelveBitAndCMYK() throws {
        var twelve = try Fixtures.bytes("ycc420-64x48.jpg")
        let sof = try #require(sofOffset(twelve))
        twelve[sof + 4] = 12
        #expect(throws: ImageError.unsupported("12-bit JPEG")) { try ImageDecoder.decode(twelve) }

        var cmyk = try Fixtures.bytes("ycc420-64x48.jpg")
        cmyk[sof + 9] = 4
        #expect(throws: ImageError.unsupported("CMYK JPEG")) { try ImageDecoder.decode(cmyk) }
    }

    private func sofOffset(_ bytes: [UInt8]) -> Int? {
        (0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && (bytes[$0 + 1] == 0xC0 || bytes[$0 + 1] == 0xC2) }
    }
}
