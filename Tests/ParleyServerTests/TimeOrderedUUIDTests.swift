import Foundation
import Testing
@testable import ParleyServer

@Suite("Time-ordered ids")
struct TimeOrderedUUIDTests {
    private func bytes(_ id: UUID) -> [UInt8] {
        withUnsafeBytes(of: id.uuid) { Array($0) }
    }

    @Test("an id is a version 7 UUID whose first 48 bits are its time in milliseconds")
    func layout() {
        let date = Date(timeIntervalSince1970: 1_796_000_000.123_456)
        let id = UUID.timeOrdered(at: date)
        let b = bytes(id)
        #expect(b[6] >> 4 == 7, "version 7")
        #expect(b[8] >> 6 == 0b10, "RFC 9562 variant")
        let milliseconds = b[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(milliseconds == 1_796_000_000_123)
        // 0.456 ms in 4,096ths (1,868), in the 12 bits after the version; a Date holds this
        // instant to about a quarter of a microsecond, one 4,096th.
        let fraction = Int(b[6] & 0x0F) << 8 | Int(b[7])
        #expect(abs(fraction - 1_868) <= 2, "\(fraction)")
        #expect(UUID(uuidString: id.uuidString) == id)
    }

    @Test("later ids sort after earlier ones, as text and as bytes, down to a fraction of a millisecond")
    func sortsByTime() {
        let start = Date(timeIntervalSince1970: 1_796_000_000)
        let ids = (0..<2_000).map { UUID.timeOrdered(at: start.addingTimeInterval(Double($0) * 0.000_3)) }
        #expect(ids.map(\.uuidString) == ids.map(\.uuidString).sorted())
        #expect(ids.map(bytes).elementsEqual(ids.map(bytes).sorted { $0.lexicographicallyPrecedes($1) }))
    }

    @Test("ids made at the same instant differ in their random bits")
    func distinct() {
        let now = Date()
        let ids = (0..<10_000).map { _ in UUID.timeOrdered(at: now) }
        #expect(Set(ids).count == ids.count)
        #expect(Set(ids.map { bytes($0)[0..<8] }).count == 1, "same time, same first 64 bits")
    }
}
