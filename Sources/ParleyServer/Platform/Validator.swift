import Vapor

/// Collects every invalid field of a request so one 422 names them all.
public struct Validator: Sendable {
    public private(set) var errors: [FieldError] = []

    public init() {}

    public mutating func add(_ field: String, _ code: String, _ message: String) {
        errors.append(FieldError(field: field, code: code, message: message))
    }

    /// Returns the value, or records a `required` error and returns nil.
    public mutating func require<T>(_ value: T?, _ field: String) -> T? {
        if value == nil { add(field, "required", "is required") }
        return value
    }

    /// Checks a string's length (in characters, after trimming whitespace) and returns it trimmed.
    @discardableResult
    public mutating func text(_ value: String?, _ field: String, length: ClosedRange<Int>, required: Bool = true) -> String? {
        guard let value else {
            if required { add(field, "required", "is required") }
            return nil
        }
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.count < length.lowerBound {
            add(field, trimmed.isEmpty ? "blank" : "too_short", "must be at least \(length.lowerBound) characters")
            return nil
        }
        if trimmed.count > length.upperBound {
            add(field, "too_long", "must be at most \(length.upperBound) characters")
            return nil
        }
        return trimmed
    }

    public func check() throws {
        if !errors.isEmpty { throw ValidationError(errors) }
    }
}
