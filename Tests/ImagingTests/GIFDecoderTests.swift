import Imaging
import Testing

@Suite("GIF decoding")
struct GIFDecoderTests {
    @Test("matches Pillow exactly", arguments: Fixtures.withSuffix(".gif"))
    func matchesReference(_ fixture: Fixture) throws {
        let image = try ImageDecoder.decode(try fixture.bytes)
        #expect(image.width == fixture.width)
        #expect(image.height == fixture.height)
        let difference = Difference(image, try fixture.expected)
        #expect(difference.mismatches == 0, "\(difference)")
    }

    @Test func partialFrameLeavesTheRestTransparent() throws {
        let image = try ImageDecoder.decode(try Fixtures.bytes("partial-frame-local-table-33x21.gif"))
        // The frame covers x 5..<25, y 3..<20 of a 33x21 screen.
        #expect(image.pixels[3] == 0)                                  // (0, 0)
        #expect(image.pixels[((20 * 33) + 32) * 4 + 3] == 0)           // (32, 20)
        let covered = stride(from: 0, to: image.pixels.count / 4, by: 1).filter { i in
            let x = i % 33, y = i / 33
            return (5..<25).contains(x) && (3..<20).contains(y)
        }
        let transparentInside = covered.filter { image.pixels[$0 * 4 + 3] == 0 }.count
        #expect(transparentInside > 0, "the transparency index is used inside the frame")
        #expect(transparentInside < covered.count)
    }
}
