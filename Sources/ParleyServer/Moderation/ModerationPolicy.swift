import Fluent
import Foundation
import SQLKit
import Vapor

/// When a score flags, holds or blocks a message: the site's thresholds, and a conversation's
/// overrides of any of them. The owner of the `moderation_policies` table's SQL.
final class ModerationPolicy: Model, @unchecked Sendable {
    static let schema = "moderation_policies"
    static let siteScope = "site"

    @ID(key: .id) var id: UUID?
    /// `site`, or a conversation's id.
    @Field(key: "scope") var scope: String
    @OptionalField(key: "flag_at") var flagAt: Double?
    @OptionalField(key: "hold_at") var holdAt: Double?
    @OptionalField(key: "block_at") var blockAt: Double?
    @OptionalField(key: "updated_by") var updatedBy: UUID?
    @Field(key: "updated_at") var updatedAt: Date

    init() {}

    /// Thresholds on the model's probability; nil means never.
    struct Thresholds: Content, Equatable {
        var flagAt: Double?
        var holdAt: Double?
        var blockAt: Double?

        enum CodingKeys: String, CodingKey {
            case flagAt = "flag_at"
            case holdAt = "hold_at"
            case blockAt = "block_at"
        }

        /// With no policy written: flag from 0.5 (the model's threshold), hold from 0.9, block never.
        static let siteDefault = Thresholds(flagAt: 0.5, holdAt: 0.9, blockAt: nil)

        /// The strictest action a score reaches.
        func action(for score: Double) -> ScreeningVerdict.Action {
            if let blockAt, score >= blockAt { return .block }
            if let holdAt, score >= holdAt { return .hold }
            if let flagAt, score >= flagAt { return .flag }
            return .allow
        }

        /// Each value must be a probability, and flag ≤ hold ≤ block where set.
        func validate() throws {
            var validator = Validator()
            for (field, value) in [("flag_at", flagAt), ("hold_at", holdAt), ("block_at", blockAt)] {
                if let value, !(0...1).contains(value) { validator.add(field, "range", "must lie in [0, 1] (or be null for never)") }
            }
            let set = [flagAt, holdAt, blockAt].compactMap { $0 }
            if set != set.sorted() { validator.add("hold_at", "order", "flag_at ≤ hold_at ≤ block_at where set") }
            try validator.check()
        }
    }

    /// The site's thresholds and a conversation's override (nil when it has none), in one query.
    static func thresholds(for conversationID: UUID, on db: any Database) async throws -> (site: Thresholds, override: Thresholds?) {
        guard let sql = db as? any SQLDatabase else { throw StorageError.notSQL }
        struct Row: Decodable { let scope: String; let flag_at: Double?; let hold_at: Double?; let block_at: Double? }
        let rows = try await sql.raw("""
            SELECT scope, flag_at, hold_at, block_at FROM moderation_policies WHERE scope IN (\(bind: siteScope), \(bind: conversationID.wire))
            """).all(decoding: Row.self)
        let site = rows.first { $0.scope == siteScope }.map { Thresholds(flagAt: $0.flag_at, holdAt: $0.hold_at, blockAt: $0.block_at) }
        let override = rows.first { $0.scope != siteScope }.map { Thresholds(flagAt: $0.flag_at, holdAt: $0.hold_at, blockAt: $0.block_at) }
        return (site ?? .siteDefault, override)
    }

    static func site(on db: any Database) async throws -> Thresholds {
        try await ModerationPolicy.query(on: db).filter(\.$scope == siteScope).first()
            .map { Thresholds(flagAt: $0.flagAt, holdAt: $0.holdAt, blockAt: $0.blockAt) } ?? .siteDefault
    }

    static func override(of conversationID: UUID, on db: any Database) async throws -> Thresholds? {
        try await ModerationPolicy.query(on: db).filter(\.$scope == conversationID.wire).first()
            .map { Thresholds(flagAt: $0.flagAt, holdAt: $0.holdAt, blockAt: $0.blockAt) }
    }

    /// Writes the thresholds of a scope (nil removes a conversation's override).
    static func write(_ thresholds: Thresholds?, scope: String, by userID: UUID, at now: Date, on tx: any Database) async throws {
        let existing = try await ModerationPolicy.query(on: tx).filter(\.$scope == scope).first()
        guard let thresholds else {
            try await existing?.delete(on: tx)
            return
        }
        let policy = existing ?? ModerationPolicy()
        policy.scope = scope
        policy.flagAt = thresholds.flagAt
        policy.holdAt = thresholds.holdAt
        policy.blockAt = thresholds.blockAt
        policy.updatedBy = userID
        policy.updatedAt = now
        try await policy.save(on: tx)
    }
}
