import Fluent
import Vapor

/// Ends a command with a status, without a stack trace.
struct ExitCode: Error, CustomStringConvertible {
    let code: Int32
    init(_ code: Int32) { self.code = code }
    var description: String { "exit \(code)" }
}
