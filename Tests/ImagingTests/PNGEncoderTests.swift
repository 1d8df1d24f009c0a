import Imaging
import Testing

@Suite("PNG encoding")
struct PNGEncoderTests {
    @Test("round-trips every decoded fixture", arguments: Fixtures.all)
    func roundTrip(_ fixture: Fixture) throws {
        let image = try ImageDecoder.decode(try fixture.bytes)
        let encoded = PNGEncoder.encode(image)
        #expect(try ImageDecoder.decode(encoded) == image)
    }

    @Test func opaqueImagesAreRGBAndOthersRGBA() throws {
        let opaque = RGBAImage(width: 3, height: 2, red: 9, green: 8, blue: 7, alpha: 255)
        let translucent = RGBAImage(width: 3, height: 2, red: 9, green: 8, blue: 7, alpha: 254)
        // Byte 25 of a PNG is IHDR's colour type; byte 24 its bit depth.
        let rgb = PNGEncoder.encode(opaque)
        let rgba = PNGEncoder.encode(translucent)
        #expect(rgb[24] == 8 && rgb[25] == 2)
        #expect(rgba[24] == 8 && rgba[25] == 6)
        #expect(try ImageDecoder.decode(rgb) == opaque)
        #expect(try ImageDecoder.decode(rgba) == translucent)
    }

    @Test func writesValidChunks() throws {
        var pixels: [UInt8] = []
        for i in 0..<(37 * 23) { pixels += [UInt8(i & 0xFF), UInt8((i * 7) & 0xFF), UInt8((i * 13) & 0xFF), UInt8((i * 3) & 0xFF)] }
        let png = PNGEncoder.encode(RGBAImage(width: 37, height: 23, pixels: pixels))
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var p = 8
        var types: [String] = []
        while p + 12 <= png.count {
            let length = Int(png[p]) << 24 | Int(png[p + 1]) << 16 | Int(png[p + 2]) << 8 | Int(png[p + 3])
            let body = Array(png[(p + 4)..<(p + 8 + length)])
            let stored = Array(png[(p + 8 + length)..<(p + 12 + length)])
            #expect(stored == PNGBytes.be32(PNGBytes.crc(body)))
            types.append(String(decoding: body.prefix(4), as: UTF8.self))
            p += 12 + length
        }
        #expect(p == png.count)
        #expect(types == ["IHDR", "IDAT", "IEND"])
        // zlib header: deflate, 32K window, check bits valid.
        let idat = Array(png[41...42])
        #expect(idat[0] & 0x0F == 8)
        #expect((Int(idat[0]) << 8 | Int(idat[1])) % 31 == 0)
    }

    @Test func largeImageRoundTrips() throws {
        var pixels = [UInt8](repeating: 0, count: 300 * 200 * 4)
        var random = SplitMix64(seed: 7)
        for i in pixels.indices { pixels[i] = i % 4 == 3 ? 255 : UInt8(truncatingIfNeeded: (i / 4) % 300 + Int(random.next() % 8)) }
        let image = RGBAImage(width: 300, height: 200, pixels: pixels)
        #expect(try ImageDecoder.decode(PNGEncoder.encode(image)) == image)
    }
}
