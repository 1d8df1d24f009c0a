// Times decoding and thumbnailing in a release build (prints only):
//   swift run -c release imaging-bench [photo.jpg] [output-dir]
//   swift run -c release imaging-bench fuzz ITERATIONS [seed]
// The JPEG defaults to .bench/photo-3000x2000-420.jpg, written by scripts/make-image-fixtures.py.
// The 2000x2000 RGBA PNG is synthesised here and written, with the thumbnails, to the output
// directory (default .bench/) so another decoder can open them.
import Foundation
import Imaging

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Best of `runs`, to keep a busy machine's noise out of the figure.
func best(_ runs: Int = 5, _ body: () throws -> Void) rethrows -> Double {
    var result = Double.infinity
    for _ in 0..<runs { result = min(result, try seconds(body)) }
    return result
}

func format(_ t: Double) -> String { String(format: "%7.1f ms", t * 1000) }

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Rewrites each complete PNG chunk's CRC, so that mutations get past the CRC check.
func fixingCRCs(_ bytes: [UInt8]) -> [UInt8] {
    func crc(_ data: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in data {
            c ^= UInt32(byte)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }
    var out = bytes
    var p = 8
    while p + 12 <= out.count {
        let length = Int(out[p]) << 24 | Int(out[p + 1]) << 16 | Int(out[p + 2]) << 8 | Int(out[p + 3])
        guard length <= out.count - p - 12 else { break }
        let c = crc(out[(p + 4)..<(p + 8 + length)])
        out.replaceSubrange((p + 8 + length)..<(p + 12 + length), with: [UInt8(c >> 24), UInt8((c >> 16) & 0xFF), UInt8((c >> 8) & 0xFF), UInt8(c & 0xFF)])
        p += 12 + length
    }
    return out
}

/// Release-mode random mutation of every test fixture, far more rounds than the unit test.
func fuzz(iterations: Int, seed: UInt64) throws {
    let directory = URL(fileURLWithPath: "Tests/ImagingTests/Fixtures")
    let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        .filter { [".png", ".jpg", ".gif"].contains(where: $0.hasSuffix) }.sorted()
    let originals = try names.map { [UInt8](try Data(contentsOf: directory.appendingPathComponent($0))) }
    var random = SplitMix64(state: seed)
    var decoded = 0
    for i in 0..<iterations {
        var bytes = originals[i % originals.count]
        for _ in 0..<(1 + Int(random.next() % 4)) {
            guard !bytes.isEmpty else { break }
            let at = Int(random.next() % UInt64(bytes.count))
            switch random.next() % 6 {
            case 0, 1: bytes[at] ^= UInt8(1 << (random.next() % 8))
            case 2: bytes[at] = UInt8(truncatingIfNeeded: random.next())
            case 3: bytes.removeSubrange(at...)
            case 4: bytes.insert(contentsOf: (0..<Int(1 + random.next() % 16)).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
            default: bytes.removeSubrange(at..<min(bytes.count, at + Int(1 + random.next() % 32)))
            }
        }
        if names[i % names.count].hasSuffix(".png") && random.next() % 2 == 0 { bytes = fixingCRCs(bytes) }
        if (try? ImageDecoder.decode(bytes)) != nil { decoded += 1 }
        if (i + 1) % 100_000 == 0 { print("\(i + 1) inputs, \(decoded) decoded") }
    }
    print("fuzz done: \(iterations) inputs, \(decoded) decoded, no crash")
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "fuzz" {
    let iterations = arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000
    let seed = arguments.count > 2 ? UInt64(arguments[2]) ?? 1 : 1
    try fuzz(iterations: iterations, seed: seed)
    exit(0)
}

let jpegPath = arguments.first ?? ".bench/photo-3000x2000-420.jpg"
let outputDirectory = URL(fileURLWithPath: arguments.count > 1 ? arguments[1] : ".bench")
try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)

if let data = FileManager.default.contents(atPath: jpegPath) {
    let bytes = [UInt8](data)
    var image = RGBAImage(width: 0, height: 0)
    let decode = try best { image = try ImageDecoder.decode(bytes) }
    var thumbnail = image
    let scale = best { thumbnail = Thumbnail.make(image, maxSide: 320) }
    print("JPEG \(image.width)x\(image.height) (\(bytes.count / 1024) KiB): decode \(format(decode)), thumbnail \(format(scale)) -> \(thumbnail.width)x\(thumbnail.height), total \(format(decode + scale))")
    try Data(PNGEncoder.encode(thumbnail)).write(to: outputDirectory.appendingPathComponent("jpeg-thumbnail.png"))
} else {
    print("no JPEG at \(jpegPath); run scripts/make-image-fixtures.py first")
}

// A 2000x2000 RGBA picture: smooth gradients, a little noise, varying alpha.
let side = 2000
var pixels = [UInt8](repeating: 0, count: side * side * 4)
var random = SplitMix64(state: 42)
for y in 0..<side {
    for x in 0..<side {
        let i = (y * side + x) * 4
        let noise = Int(random.next() & 7)
        pixels[i] = UInt8((x * 255 / side + noise) & 0xFF)
        pixels[i + 1] = UInt8((y * 255 / side + noise) & 0xFF)
        pixels[i + 2] = UInt8(((x + y) / 16) & 0xFF)
        pixels[i + 3] = UInt8(128 + (x / 32 + y / 32) % 128)
    }
}
let source = RGBAImage(width: side, height: side, pixels: pixels)
var png: [UInt8] = []
let encode = seconds { png = PNGEncoder.encode(source) }
var decodedPNG = RGBAImage(width: 0, height: 0)
let pngDecode = try best { decodedPNG = try ImageDecoder.decode(png) }
var pngThumbnail = decodedPNG
let pngScale = best { pngThumbnail = Thumbnail.make(decodedPNG, maxSide: 320) }
print("PNG \(side)x\(side) RGBA (\(png.count / 1024) KiB): decode \(format(pngDecode)), thumbnail \(format(pngScale)), total \(format(pngDecode + pngScale)); encode \(format(encode)); round trip \(decodedPNG == source ? "equal" : "DIFFERENT")")
try Data(png).write(to: outputDirectory.appendingPathComponent("rgba-2000x2000.png"))
try Data(PNGEncoder.encode(pngThumbnail)).write(to: outputDirectory.appendingPathComponent("png-thumbnail.png"))
