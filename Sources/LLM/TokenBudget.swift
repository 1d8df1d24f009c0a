import Foundation
import Synchronization

/// Tokens allowed per key (an assistant in a conversation, a user…) per UTC day. Shared by
/// the models that charge it.
public final class TokenBudget: Sendable {
    public let limit: Int
    private let now: @Sendable () -> Date
    private let spent = Mutex<[String: (day: Int, tokens: Int)]>([:])

    public init(tokensPerDay limit: Int, now: @escaping @Sendable () -> Date = { Date() }) {
        self.limit = limit
        self.now = now
    }

    private var today: Int { Int(now().timeIntervalSince1970 / 86_400) }

    /// Tokens `key` has used today.
    public func used(by key: String) -> Int {
        let day = today
        return spent.withLock { spent in spent[key].flatMap { $0.day == day ? $0.tokens : nil } ?? 0 }
    }

    public func remaining(for key: String) -> Int { max(0, limit - used(by: key)) }

    public func charge(_ tokens: Int, to key: String) {
        let day = today
        spent.withLock { spent in
            let before = spent[key].flatMap { $0.day == day ? $0.tokens : nil } ?? 0
            spent[key] = (day, before + tokens)
        }
    }
}

/// Refuses a request when any of its budgets is spent (`.budgetExceeded`, before asking the
/// model), and charges each budget the tokens a reply used.
public struct BudgetedModel: ChatModel {
    public let base: any ChatModel
    public let budgets: [(budget: TokenBudget, key: String)]

    public init(_ base: any ChatModel, budgets: [(budget: TokenBudget, key: String)]) {
        self.base = base
        self.budgets = budgets
    }

    public func complete(_ request: ChatRequest) async throws(LLMError) -> ChatResponse {
        try await collect(request, model: "budgeted")
    }

    public func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatDelta, any Error> {
        let base = self.base, budgets = self.budgets
        return .running { continuation in
            for (budget, key) in budgets where budget.remaining(for: key) == 0 {
                throw LLMError.budgetExceeded("\(key) has used its \(budget.limit) tokens for today")
            }
            for try await delta in base.stream(request) {
                if case .usage(let usage) = delta {
                    for (budget, key) in budgets { budget.charge(usage.totalTokens, to: key) }
                }
                continuation.yield(delta)
            }
        }
    }
}
