import Foundation
import Testing
import Learning

@Suite("Model file")
struct ModelFileTests {
    let texts = [
        "buy cheap pills now", "cheap pills cheap", "win money now click", "free money click here",
        "see you at lunch", "how was the meeting", "lunch tomorrow?", "thanks for the notes",
    ]
    let labels = [true, true, true, true, false, false, false, false]

    func classifier() throws -> TextClassifier {
        let vectorizer = try HashingVectorizer(wordNGrams: 1...2, characterNGrams: 2...4, bucketBits: 16)
        return try TextClassifier.train(texts: texts, labels: labels, vectorizer: vectorizer, sublinearTF: true, threshold: 0.4)
    }

    @Test func roundTripGivesIdenticalPredictions() throws {
        let original = try classifier()
        let restored = try ModelFile.decode(ModelFile.encode(original))
        #expect(restored == original)
        for text in texts + ["cheap lunch", "unseen words entirely"] {
            #expect(restored.predictProbability(text) == original.predictProbability(text))
        }
        #expect(original.predict("cheap pills"))
        #expect(!original.predict("see you at the meeting"))
    }

    @Test func saveAndLoadThroughAFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("model-\(UInt64.random(in: 0...UInt64.max)).prly")
        defer { try? FileManager.default.removeItem(at: url) }
        let original = try classifier()
        try ModelFile.save(original, to: url)
        #expect(try ModelFile.load(from: url) == original)
    }

    @Test func flippedPayloadByteIsAChecksumMismatch() throws {
        var data = try ModelFile.encode(classifier())
        let position = ModelFile.headerSize + (data.count - ModelFile.headerSize) / 2
        data[position] ^= 0x01
        #expect {
            try ModelFile.decode(data)
        } throws: { error in
            if case ModelFileError.checksumMismatch = error { return true }
            return false
        }
    }

    @Test func wrongMagicIsNotAModelFile() throws {
        var data = try ModelFile.encode(classifier())
        data[0] = UInt8(ascii: "X")
        #expect(throws: ModelFileError.notAModelFile) { try ModelFile.decode(data) }
        #expect(throws: ModelFileError.notAModelFile) { try ModelFile.decode(Data("{}".utf8)) }
    }

    @Test func newerVersionIsUnsupported() throws {
        var data = try ModelFile.encode(classifier())
        data[8] = UInt8(ModelFile.currentVersion + 1)
        #expect(throws: ModelFileError.unsupportedVersion(found: ModelFile.currentVersion + 1, newestSupported: ModelFile.currentVersion)) {
            try ModelFile.decode(data)
        }
    }

    @Test func truncatedFileIsReported() throws {
        let data = try ModelFile.encode(classifier())
        #expect(throws: ModelFileError.truncated) { try ModelFile.decode(data.prefix(data.count - 10)) }
        #expect(throws: ModelFileError.truncated) { try ModelFile.decode(data.prefix(12)) }
    }

    @Test func crc32MatchesTheStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }
}
