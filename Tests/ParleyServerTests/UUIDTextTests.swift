import Foundation
import SQLiteKit
import Testing
@testable import ParleyServer

@Suite("UUIDs as text")
struct UUIDTextTests {
    @Test("the wire and stored forms are Foundation's uuidString, in lower and upper case")
    func formats() {
        var ids = (0..<2_000).map { _ in UUID() } + (0..<100).map { _ in UUID.timeOrdered() }
        ids.append(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
        ids.append(UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)))
        for id in ids {
            #expect(id.stored == id.uuidString)
            #expect(id.wire == id.uuidString.lowercased())
        }
    }

    @Test("parsing accepts what UUID(uuidString:) accepts, in either case, and refuses the rest")
    func parsing() {
        let id = UUID()
        let mixed = String(id.uuidString.enumerated().map { $0.offset.isMultiple(of: 2) ? Character($0.element.lowercased()) : $0.element })
        let accepted = [id.uuidString, id.wire, mixed, "00000000-0000-0000-0000-000000000000", "FFFFFFFF-ffff-FFFF-ffff-FFFFFFFFFFFF"]
        for text in accepted {
            #expect(UUID(wire: text) != nil, "\(text)")
            #expect(UUID(wire: text) == UUID(uuidString: text), "\(text)")
        }
        let valid = id.wire
        let refused = [
            "", "not a uuid", String(valid.dropLast()), valid + "0", "{\(valid)}", valid.replacingOccurrences(of: "-", with: ""),
            // A hyphen moved, a hyphen replaced, a digit that is not hexadecimal, a non-ASCII letter.
            "0000000-00000-0000-0000-000000000000", "00000000x0000-0000-0000-000000000000",
            "g0000000-0000-0000-0000-000000000000", "é0000000-0000-0000-0000-00000000000",
        ]
        for text in refused {
            #expect(UUID(wire: text) == nil, "\(text)")
            #expect(UUID(uuidString: text) == nil, "\(text)")
        }
    }

    @Test("a row's ids, texts, numbers, dates and flags decode as sqlite-kit's decoder decodes them")
    func rowDecoding() throws {
        let id = UUID()
        let values: [SQLiteData] = [.text(id.uuidString), .text(id.wire), .null, .text("text"), .integer(42), .float(1_796_000_000.25),
                                    .integer(7), .text("not a uuid"), .float(2.5), .integer(0), .integer(1), .text("true")]
        let row = DirectSQLiteRow(columns: DirectSQLiteColumns(names: values.indices.map { "c\($0)" }), values: values)
        let decoder = SQLiteDataDecoder()
        func same<T: Decodable & Equatable>(_ type: T.Type, _ column: Int) throws {
            let expected = Result { try decoder.decode(T.self, from: values[column]) }
            let decoded = Result { try row.decode(column: "c\(column)", as: T.self) }
            switch (expected, decoded) {
            case (.success(let a), .success(let b)): #expect(a == b, "\(T.self) from \(values[column])")
            case (.failure, .failure): break
            default: Issue.record("\(T.self) from \(values[column]): sqlite-kit \(expected), the row \(decoded)")
            }
        }
        for column in values.indices {
            try same(UUID.self, column)
            try same(UUID?.self, column)
            try same(String.self, column)
            try same(String?.self, column)
            try same(Int.self, column)
            try same(Int?.self, column)
            try same(Date?.self, column)
            try same(Date.self, column)
            try same(Bool.self, column)
            try same(Bool?.self, column)
        }
        #expect(try row.decode(column: "c1", as: UUID.self) == id)
        #expect(try row.decode(column: "c2", as: UUID?.self) == nil)
        #expect(try DirectSQLite.encode([id, UUID?.none, UUID?.some(id)]) == [.text(id.uuidString), .null, .text(id.uuidString)])
    }
}
