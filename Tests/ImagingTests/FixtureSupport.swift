import Foundation
import Imaging
import Testing

/// One image of Fixtures/manifest.json with Pillow's decode of it.
struct Fixture: Codable, Sendable, CustomTestStringConvertible {
    let file: String
    let reference: String
    let width: Int
    let height: Int
    /// "exact" (PNG, GIF) or "jpeg" (compared within a tolerance).
    let kind: String

    var testDescription: String { file }

    var bytes: [UInt8] { get throws { try Fixtures.bytes(file) } }
    var expected: RGBAImage { get throws { RGBAImage(width: width, height: height, pixels: try Fixtures.bytes(reference)) } }
}

enum Fixtures {
    struct Missing: Error, CustomStringConvertible {
        let name: String
        var description: String { "fixture \(name) not found" }
    }

    static func url(_ name: String) -> URL? {
        Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures")
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        guard let url = url(name) else { throw Missing(name: name) }
        return [UInt8](try Data(contentsOf: url))
    }

    static let all: [Fixture] = {
        guard let data = try? bytes("manifest.json"),
              let fixtures = try? JSONDecoder().decode([Fixture].self, from: Data(data))
        else { return [] }
        return fixtures
    }()

    static func withSuffix(_ suffix: String) -> [Fixture] {
        all.filter { $0.file.hasSuffix(suffix) }
    }
}

/// How far a decode is from its reference.
struct Difference: CustomStringConvertible {
    var meanAbsolute: Double
    var maxAbsolute: Int
    /// Pixels that differ anywhere other than in the colour of pixels transparent in both images.
    var mismatches: Int

    var description: String {
        String(format: "mean %.3f, max %d, %d mismatching pixels", meanAbsolute, maxAbsolute, mismatches)
    }

    init(_ a: RGBAImage, _ b: RGBAImage) {
        precondition(a.pixels.count == b.pixels.count)
        var total = 0
        var worst = 0
        var mismatches = 0
        var i = 0
        while i < a.pixels.count {
            let bothTransparent = a.pixels[i + 3] == 0 && b.pixels[i + 3] == 0
            var differs = false
            for c in 0..<4 {
                let d = abs(Int(a.pixels[i + c]) - Int(b.pixels[i + c]))
                total += d
                worst = max(worst, d)
                if d != 0 && !(bothTransparent && c < 3) { differs = true }
            }
            if differs { mismatches += 1 }
            i += 4
        }
        meanAbsolute = a.pixels.isEmpty ? 0 : Double(total) / Double(a.pixels.count)
        maxAbsolute = worst
        self.mismatches = mismatches
    }
}

/// Deterministic PRNG for the fuzz test (Vigna's SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Builders for hand-made PNG chunks in tests.
enum PNGBytes {
    static func crc(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        return ~crc
    }

    static func be32(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(UInt32(data.count)) + body + be32(crc(body))
    }

    /// Rewrites every complete chunk's CRC, so mutations reach past the CRC check.
    static func fixingCRCs(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        var p = 8
        while p + 12 <= out.count {
            let length = Int(out[p]) << 24 | Int(out[p + 1]) << 16 | Int(out[p + 2]) << 8 | Int(out[p + 3])
            guard length <= out.count - p - 12 else { break }
            let crc = be32(crc(Array(out[(p + 4)..<(p + 8 + length)])))
            out.replaceSubrange((p + 8 + length)..<(p + 12 + length), with: crc)
            p += 12 + length
        }
        return out
    }
}
