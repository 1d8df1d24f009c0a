import Foundation
import Logging
import NIOConcurrencyHelpers

/// Writes each log record as one JSON object on one line.
///
/// Hand-written because swift-log ships only a plain-text handler and no listed package
/// provides a JSON one. Records go to a `LogSink`: standard output in production, a buffer
/// in tests.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let sink: any LogSink

    public init(label: String, level: Logger.Level, sink: any LogSink = StandardOutputSink.shared) {
        self.label = label
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
        source: String, file: String, function: String, line: UInt
    ) {
        var merged = self.metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit { merged.merge(explicit) { $1 } }

        var out = "{\"time\":"
        Self.append(string: Self.timestamp(), to: &out)
        out += ",\"level\":"
        Self.append(string: level.rawValue, to: &out)
        out += ",\"logger\":"
        Self.append(string: label, to: &out)
        out += ",\"message\":"
        Self.append(string: message.description, to: &out)
        for key in merged.keys.sorted() {
            out += ","
            Self.append(string: key, to: &out)
            out += ":"
            Self.append(value: merged[key]!, to: &out)
        }
        out += "}\n"
        sink.write(out)
    }

    static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    static func append(value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let string):
            append(string: string, to: &out)
        case .stringConvertible(let convertible):
            if let number = convertible as? any BinaryInteger { out += "\(number)" }
            else if let number = convertible as? Double, number.isFinite { out += "\(number)" }
            else if let flag = convertible as? Bool { out += flag ? "true" : "false" }
            else { append(string: convertible.description, to: &out) }
        case .array(let values):
            out += "["
            for (index, value) in values.enumerated() {
                if index > 0 { out += "," }
                append(value: value, to: &out)
            }
            out += "]"
        case .dictionary(let dictionary):
            out += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                append(string: key, to: &out)
                out += ":"
                append(value: dictionary[key]!, to: &out)
            }
            out += "}"
        }
    }

    static func append(string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += String(format: "\\u%04x", scalar.value)
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

/// Where log lines go.
public protocol LogSink: Sendable {
    func write(_ line: String)
}

public final class StandardOutputSink: LogSink {
    public static let shared = StandardOutputSink()
    private let lock = NIOLock()

    public func write(_ line: String) {
        lock.withLock {
            FileHandle.standardOutput.write(Data(line.utf8))
        }
    }
}

/// Keeps log lines in memory (tests read them back).
public final class MemoryLogSink: LogSink {
    private let lines = NIOLockedValueBox<[String]>([])

    public init() {}

    public func write(_ line: String) {
        lines.withLockedValue { $0.append(line) }
    }

    public var contents: [String] {
        lines.withLockedValue { $0 }
    }

    public func reset() {
        lines.withLockedValue { $0.removeAll() }
    }
}
