import Imaging
import Testing

@Suite("PNG decoding")
struct PNGDecoderTests {
    @Test("matches Pillow exactly", arguments: Fixtures.withSuffix(".png"))
    func matchesReference(_ fixture: Fixture) throws {
        let image = try ImageDecoder.decode(try fixture.bytes)
        #expect(image.width == fixture.width)
        #expect(image.height == fixture.height)
        let difference = Difference(image, try fixture.expected)
        #expect(difference.mismatches == 0, "\(difference)")
    }

    @Test func coversEveryColourTypeAndDepth() {
        let names = Fixtures.withSuffix(".png").map(\.file)
        for prefix in ["gray1", "gray2", "gray4", "gray8", "gray16", "rgb8", "rgb16", "palette1", "palette2",
                       "palette4", "palette8", "graya8", "graya16", "rgba8", "rgba16"] {
            #expect(names.contains { $0.hasPrefix(prefix + "-") }, "no fixture for \(prefix)")
        }
        #expect(names.filter { $0.contains("interlaced") }.count >= 5)
        #expect(names.filter { $0.contains("trns") }.count >= 4)
    }

    @Test func transparencyKeysAndPaletteAlpha() throws {
        let fixture = try #require(Fixtures.withSuffix(".png").first { $0.file.hasPrefix("palette8-33x65-trns") })
        let image = try ImageDecoder.decode(try fixture.bytes)
        let alphas = Set(stride(from: 3, to: image.pixels.count, by: 4).map { image.pixels[$0] })
        #expect(alphas.isSuperset(of: [0, 128, 64, 255]))
    }

    @Test func sixteenBitKeepsTheHighByte() throws {
        // Header for a 1x1 16-bit RGBA pixel 0x1234 0x5678 0x9ABC 0xDEF0.
        let ihdr: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 1, 16, 6, 0, 0, 0]
        let scanline: [UInt8] = [0, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0]
        let png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + PNGBytes.chunk("IHDR", ihdr)
            + PNGBytes.chunk("IDAT", storedZlib(scanline)) + PNGBytes.chunk("IEND", [])
        let image = try ImageDecoder.decode(png)
        #expect(image.pixels == [0x12, 0x56, 0x9A, 0xDE])
    }
}

/// A zlib stream of one stored block; enough for hand-made test PNGs.
func storedZlib(_ data: [UInt8]) -> [UInt8] {
    var a: UInt32 = 1, b: UInt32 = 0
    for byte in data {
        a = (a + UInt32(byte)) % 65521
        b = (b + a) % 65521
    }
    let n = data.count
    return [0x78, 0x01, 1, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
        + data + PNGBytes.be32(b << 16 | a)
}
