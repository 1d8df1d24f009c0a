import Fluent
import Foundation
import SQLKit
import Vapor

enum PresenceStatus: String, Codable, Sendable, Comparable {
    case offline, away, online

    private var rank: Int {
        switch self {
        case .offline: 0
        case .away: 1
        case .online: 2
        }
    }

    static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}
