import Imaging
import Testing

@Suite("Typed errors")
struct ErrorTests {
    private static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    private func isCorrupt(_ body: () throws -> Void) -> Bool {
        do {
            try body()
        } catch let error as ImageError {
            if case .corrupt = error { return true }
        } catch {}
        return false
    }

    @Test func nonImagesAreUnsupported() {
        #expect(throws: ImageError.unsupported("unrecognised image format")) { try ImageDecoder.decode([]) }
        #expect(throws: ImageError.unsupported("unrecognised image format")) {
            try ImageDecoder.decode(Array("hello, this is plain text".utf8))
        }
        #expect(throws: ImageError.unsupported("unrecognised image format")) {
            try ImageDecoder.decode(Array("BM\u{0}\u{0}".utf8) + [UInt8](repeating: 0, count: 60))
        }
    }

    @Test("truncation is corrupt", arguments: ["rgba8-33x65.png", "ycc420-64x48.jpg", "progressive-420-64x48.jpg", "interlaced-33x65.gif"])
    func truncated(_ name: String) throws {
        let bytes = try Fixtures.bytes(name)
        for cut in [bytes.count / 3, bytes.count / 2, bytes.count - 3] {
            #expect(isCorrupt { _ = try ImageDecoder.decode(Array(bytes.prefix(cut))) }, "cut at \(cut)")
        }
    }

    @Test func badCRCIsCorrupt() throws {
        var bytes = try Fixtures.bytes("rgb8-33x65.png")
        bytes[20] ^= 0x01 // inside IHDR's data
        #expect(throws: ImageError.corrupt("bad CRC in IHDR chunk")) { try ImageDecoder.decode(bytes) }

        var idat = try Fixtures.bytes("rgb8-33x65.png")
        idat[idat.count - 20] ^= 0x40 // inside the last IDAT's data
        #expect(throws: ImageError.corrupt("bad CRC in IDAT chunk")) { try ImageDecoder.decode(idat) }
    }

    @Test func hugePNGIsTooLargeBeforeAllocation() {
        // 100000 x 100000 RGBA would need 40 GB; the header alone must be refused.
        let ihdr: [UInt8] = [0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0, 8, 6, 0, 0, 0]
        let png = Self.signature + PNGBytes.chunk("IHDR", ihdr) + PNGBytes.chunk("IDAT", [0x78, 0x9C, 0x03, 0x00]) + PNGBytes.chunk("IEND", [])
        #expect(throws: ImageError.tooLarge(width: 100_000, height: 100_000)) { try ImageDecoder.decode(png) }
        // Even a caller with no budget cannot make it allocate: the ceiling still applies.
        #expect(throws: ImageError.tooLarge(width: 100_000, height: 100_000)) { try ImageDecoder.decode(png, maxPixels: .max) }
    }

    @Test func hugeJPEGAndGIFAreTooLarge() throws {
        var jpeg = try Fixtures.bytes("ycc420-64x48.jpg")
        let sof = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange((sof + 5)..<(sof + 9), with: [0xFF, 0xF0, 0xFF, 0xF0])
        #expect(throws: ImageError.tooLarge(width: 65520, height: 65520)) { try ImageDecoder.decode(jpeg) }

        var gif = try Fixtures.bytes("gif87a-17x9.gif")
        gif.replaceSubrange(6..<10, with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: ImageError.tooLarge(width: 65535, height: 65535)) { try ImageDecoder.decode(gif) }
    }

    @Test func maxPixelsIsTheCallersBudget() throws {
        let bytes = try Fixtures.bytes("rgba8-33x65.png")
        #expect(throws: ImageError.tooLarge(width: 33, height: 65)) { try ImageDecoder.decode(bytes, maxPixels: 33 * 65 - 1) }
        #expect(try ImageDecoder.decode(bytes, maxPixels: 33 * 65).width == 33)
    }

    @Test func decompressionBombStopsAtTheDeclaredSize() throws {
        // A 4x4 gray image whose IDAT inflates to far more than the 20 bytes the header implies.
        let ihdr: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 4, 8, 0, 0, 0, 0]
        let plenty = storedZlib([UInt8](repeating: 0, count: 60_000))
        let png = Self.signature + PNGBytes.chunk("IHDR", ihdr) + PNGBytes.chunk("IDAT", plenty) + PNGBytes.chunk("IEND", [])
        let image = try ImageDecoder.decode(png)
        #expect(image.width == 4 && image.pixels.count == 64)
    }

    @Test func shortImageDataIsCorrupt() {
        let ihdr: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 4, 8, 0, 0, 0, 0]
        let png = Self.signature + PNGBytes.chunk("IHDR", ihdr) + PNGBytes.chunk("IDAT", storedZlib([0, 1, 2])) + PNGBytes.chunk("IEND", [])
        #expect(throws: ImageError.corrupt("compressed image data is truncated")) { try ImageDecoder.decode(png) }
    }

    @Test func unknownCriticalChunkIsUnsupported() throws {
        var bytes = try Fixtures.bytes("rgb8-1x1-interlaced.png")
        let iend = bytes.count - 12
        bytes.insert(contentsOf: PNGBytes.chunk("CgBI", [0, 0, 0, 0]), at: iend)
        #expect(throws: ImageError.unsupported("unknown critical PNG chunk CgBI")) { try ImageDecoder.decode(bytes) }
    }
}
