import Foundation

/// A model provider the operator configured: where assistants' models are served.
///
/// Read from `PARLEY_LLM_PROVIDERS` (names) and `PARLEY_LLM_<NAME>_*` per provider, or the
/// one-provider shortcut `PARLEY_LLM_URL` (a provider named `default`). The API key is kept
/// out of `description`, so printing a provider never prints the key.
public struct ModelProvider: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        /// `/v1/chat/completions`: OpenAI, vLLM, Ollama, llama.cpp, LM Studio.
        case openai
        /// Anthropic's Messages API.
        case anthropic
        /// An offline model that calls the first allowed tool once and then answers with
        /// `script`: for benchmarks and demos, so a figure measures Parley and not a model.
        case scripted
    }

    /// Price of a million tokens, in US dollars, for the cost metric and run traces.
    public struct Price: Sendable, Equatable {
        public var input: Double
        public var output: Double
    }

    public var name: String
    public var kind: Kind
    public var baseURL: String
    public var apiKey: String?
    /// Another provider's name to ask when this one fails after its retries.
    public var fallback: String?
    /// The model asked when the fallback is used (the assistant's model name when nil).
    public var fallbackModel: String?
    public var firstTokenTimeout: Duration = .seconds(60)
    public var totalTimeout: Duration = .seconds(300)
    public var price: Price?
    /// What a `scripted` provider answers.
    public var script: String = "This is a scripted reply from Parley's offline benchmark model."
    /// How long a `scripted` provider waits before each word (none: as fast as it can, for
    /// benchmarks; a few tens of milliseconds show streaming in a demo or a browser test).
    public var wordDelay: Duration = .zero

    public init(name: String, kind: Kind, baseURL: String, apiKey: String? = nil) {
        self.name = name
        self.kind = kind
        self.baseURL = baseURL
        self.apiKey = apiKey
    }

    public var description: String {
        "\(name) (\(kind.rawValue) at \(baseURL), api key \(apiKey == nil ? "not set" : "set"))"
    }

    /// Parses the provider settings from `PARLEY_LLM_*` variables, adding a sentence per
    /// problem to `problems`.
    static func load(from env: [String: String], problems: inout [String]) -> [ModelProvider] {
        var providers: [ModelProvider] = []
        if let url = env["PARLEY_LLM_URL"] {
            if isHTTPURL(url) {
                var provider = ModelProvider(name: "default", kind: .openai, baseURL: url, apiKey: env["PARLEY_LLM_API_KEY"])
                if let raw = env["PARLEY_LLM_KIND"] {
                    if let kind = Kind(rawValue: raw.lowercased()) { provider.kind = kind }
                    else { problems.append("PARLEY_LLM_KIND must be one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))") }
                }
                providers.append(provider)
            } else {
                problems.append("PARLEY_LLM_URL must be an http:// or https:// URL (the base of the API, such as http://127.0.0.1:8090/v1)")
            }
        }
        guard let list = env["PARLEY_LLM_PROVIDERS"] else { return providers }
        for rawName in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !rawName.isEmpty {
            guard rawName.range(of: "^[a-z][a-z0-9_]{0,31}$", options: .regularExpression) != nil else {
                problems.append("PARLEY_LLM_PROVIDERS: \"\(rawName)\" is not a provider name (a letter, then up to 31 of a-z 0-9 _)")
                continue
            }
            let prefix = "PARLEY_LLM_\(rawName.uppercased())_"
            var kind = Kind.openai
            if let raw = env[prefix + "KIND"] {
                guard let parsed = Kind(rawValue: raw.lowercased()) else {
                    problems.append("\(prefix)KIND must be one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
                    continue
                }
                kind = parsed
            }
            let defaultURL = kind == .anthropic ? "https://api.anthropic.com" : (kind == .scripted ? "scripted:" : nil)
            guard let url = env[prefix + "URL"] ?? defaultURL else {
                problems.append("\(prefix)URL is required for an \(kind.rawValue) provider (such as http://127.0.0.1:11434/v1)")
                continue
            }
            if kind != .scripted, !isHTTPURL(url) {
                problems.append("\(prefix)URL must be an http:// or https:// URL")
                continue
            }
            var provider = ModelProvider(name: rawName, kind: kind, baseURL: url, apiKey: env[prefix + "API_KEY"])
            provider.fallback = env[prefix + "FALLBACK"]?.lowercased()
            provider.fallbackModel = env[prefix + "FALLBACK_MODEL"]
            if let raw = env[prefix + "TIMEOUT"] {
                if let seconds = Int(raw), (1...3600).contains(seconds) { provider.firstTokenTimeout = .seconds(seconds) }
                else { problems.append("\(prefix)TIMEOUT must be a whole number of seconds to the first token, in 1...3600") }
            }
            if let raw = env[prefix + "PRICE"] {
                let parts = raw.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
                if parts.count == 2, parts.allSatisfy({ $0 >= 0 }) { provider.price = Price(input: parts[0], output: parts[1]) }
                else { problems.append("\(prefix)PRICE must be two numbers, dollars per million input and output tokens (such as 0.15,0.60)") }
            }
            if let script = env[prefix + "SCRIPT"] { provider.script = script }
            if let raw = env[prefix + "WORD_DELAY_MS"] {
                if kind == .scripted, let milliseconds = Int(raw), (0...10_000).contains(milliseconds) {
                    provider.wordDelay = .milliseconds(milliseconds)
                } else {
                    problems.append("\(prefix)WORD_DELAY_MS is for scripted providers: milliseconds before each word, in 0...10000")
                }
            }
            providers.append(provider)
        }
        let names = Set(providers.map(\.name))
        for provider in providers {
            if let fallback = provider.fallback, !names.contains(fallback) || fallback == provider.name {
                problems.append("PARLEY_LLM_\(provider.name.uppercased())_FALLBACK names \"\(fallback)\", which is not another configured provider")
            }
        }
        return providers
    }

    private static func isHTTPURL(_ raw: String) -> Bool {
        guard let url = URL(string: raw), let scheme = url.scheme?.lowercased(), url.host != nil else { return false }
        return scheme == "http" || scheme == "https"
    }
}
