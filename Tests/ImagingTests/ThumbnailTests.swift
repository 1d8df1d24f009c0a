import Imaging
import Testing

@Suite("Thumbnails")
struct ThumbnailTests {
    @Test("keeps the aspect ratio", arguments: [
        (1000, 500, 320, 320, 160),
        (500, 1000, 320, 160, 320),
        (3000, 2000, 320, 320, 213),
        (1000, 1, 320, 320, 1),
        (1, 1000, 10, 1, 10),
        (3000, 2, 10, 10, 1),
        (33, 65, 16, 8, 16),
    ])
    func sizes(width: Int, height: Int, maxSide: Int, expectedWidth: Int, expectedHeight: Int) {
        let thumbnail = Thumbnail.make(RGBAImage(width: width, height: height, alpha: 255), maxSide: maxSide)
        #expect(thumbnail.width == expectedWidth)
        #expect(thumbnail.height == expectedHeight)
        #expect(thumbnail.pixels.count == expectedWidth * expectedHeight * 4)
    }

    @Test func neverScalesUp() {
        let image = RGBAImage(width: 10, height: 10, red: 1, green: 2, blue: 3, alpha: 4)
        #expect(Thumbnail.make(image, maxSide: 320) == image)
        #expect(Thumbnail.make(image, maxSide: 10) == image)
    }

    @Test func zeroOrNegativeMaxSideGivesOnePixel() {
        let image = RGBAImage(width: 7, height: 3, alpha: 255)
        let thumbnail = Thumbnail.make(image, maxSide: 0)
        #expect(thumbnail.width == 1 && thumbnail.height == 1)
        #expect(Thumbnail.make(image, maxSide: -5).width == 1)
    }

    @Test func averagesWholeBoxes() {
        // 4x2 -> 2x1: each output pixel is the mean of a 2x2 box.
        let pixels: [UInt8] = [
            0, 0, 0, 255, 100, 0, 0, 255, 10, 20, 30, 255, 50, 60, 70, 255,
            200, 0, 0, 255, 100, 4, 0, 255, 90, 100, 110, 255, 130, 140, 150, 255,
        ]
        let thumbnail = Thumbnail.make(RGBAImage(width: 4, height: 2, pixels: pixels), maxSide: 2)
        #expect(thumbnail.width == 2 && thumbnail.height == 1)
        #expect(thumbnail.pixels == [100, 1, 0, 255, 70, 80, 90, 255])
    }

    @Test func weighsPartialCoverage() {
        // 3x1 -> 2x1: output 0 covers source 0 fully and half of source 1 (weights 2/3, 1/3).
        let pixels: [UInt8] = [90, 0, 0, 255, 0, 90, 0, 255, 0, 0, 90, 255]
        let thumbnail = Thumbnail.make(RGBAImage(width: 3, height: 1, pixels: pixels), maxSide: 2)
        #expect(thumbnail.pixels == [60, 30, 0, 255, 0, 30, 60, 255])
    }

    @Test func transparentPixelsLendNoColour() {
        // Opaque red next to transparent green: the colour stays red, alpha halves.
        let pixels: [UInt8] = [255, 0, 0, 255, 0, 255, 0, 0]
        let thumbnail = Thumbnail.make(RGBAImage(width: 2, height: 1, pixels: pixels), maxSide: 1)
        #expect(thumbnail.pixels == [255, 0, 0, 128])
    }

    @Test func averagesAGradient() {
        var pixels: [UInt8] = []
        for y in 0..<8 {
            for x in 0..<8 { pixels += [UInt8(x * 30), UInt8(y * 30), 0, 255] }
        }
        let thumbnail = Thumbnail.make(RGBAImage(width: 8, height: 8, pixels: pixels), maxSide: 2)
        // Each output pixel averages a 4x4 box: x or y in 0...3 -> 45, in 4...7 -> 165.
        #expect(thumbnail.pixels == [45, 45, 0, 255, 165, 45, 0, 255, 45, 165, 0, 255, 165, 165, 0, 255])
    }

    @Test func survivesAPixelBufferOfTheWrongSize() {
        var image = RGBAImage(width: 40, height: 20, alpha: 255)
        image.pixels.removeLast(100)
        let thumbnail = Thumbnail.make(image, maxSide: 10)
        #expect(thumbnail.width == 10 && thumbnail.height == 5)
    }
}
