import Fluent
import Foundation
import SQLKit

enum JobQueueError: Error, Equatable {
    /// A job needs a queue name and at least one attempt.
    case invalidJob
}
