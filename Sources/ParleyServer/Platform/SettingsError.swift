import Foundation
import Logging

/// A configuration problem, naming every variable that is wrong or missing.
public struct SettingsError: Error, CustomStringConvertible, Sendable {
    public var problems: [String]
    public var description: String {
        "Parley cannot start:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
