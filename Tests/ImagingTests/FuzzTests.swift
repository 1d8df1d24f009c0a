import Imaging
import Testing

/// Seeded random damage to every valid fixture; passing means nothing trapped or hung.
@Suite("Fuzzing")
struct FuzzTests {
    static let mutationsPerFixture = 100

    @Test func mutatedFixturesNeverCrash() throws {
        let names = Fixtures.all.map(\.file)
        #expect(names.count >= 50)
        var random = SplitMix64(seed: 0x5EED_1234)
        var decoded = 0
        var failed = 0
        for name in names {
            let original = try Fixtures.bytes(name)
            for _ in 0..<Self.mutationsPerFixture {
                var bytes = original
                let rounds = 1 + Int(random.next() % 4)
                for _ in 0..<rounds { mutate(&bytes, &random) }
                // PNG: repair the CRCs half of the time so the damage reaches the decoders behind the check.
                if name.hasSuffix(".png") && random.next() % 2 == 0 { bytes = PNGBytes.fixingCRCs(bytes) }
                do {
                    let image = try ImageDecoder.decode(bytes, maxPixels: 4_000_000)
                    #expect(image.pixels.count == image.width * image.height * 4)
                    decoded += 1
                } catch {
                    failed += 1
                }
            }
        }
        #expect(decoded + failed == names.count * Self.mutationsPerFixture)
        print("fuzz: \(decoded + failed) inputs, \(decoded) decoded, \(failed) refused")
    }

    private func mutate(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        guard !bytes.isEmpty else { return }
        let at = Int(random.next() % UInt64(bytes.count))
        switch random.next() % 7 {
        case 0, 1:
            bytes[at] ^= UInt8(1 << (random.next() % 8))
        case 2:
            bytes[at] = [0x00, 0xFF, 0x7F, 0x80, UInt8(truncatingIfNeeded: random.next())][Int(random.next() % 5)]
        case 3:
            bytes.removeSubrange(at...)
        case 4:
            let run = (0..<Int(1 + random.next() % 16)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            bytes.insert(contentsOf: run, at: at)
        case 5:
            bytes.removeSubrange(at..<min(bytes.count, at + Int(1 + random.next() % 32)))
        default:
            let length = min(bytes.count - at, Int(1 + random.next() % 64))
            let copy = Array(bytes[at..<(at + length)])
            bytes.insert(contentsOf: copy, at: Int(random.next() % UInt64(bytes.count)))
        }
    }
}
