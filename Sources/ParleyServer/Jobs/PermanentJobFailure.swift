import Fluent
import Foundation
import SQLKit

/// Thrown by a job handler for a failure that retrying cannot fix (bad input): the job is
/// dead-lettered at once.
struct PermanentJobFailure: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}
