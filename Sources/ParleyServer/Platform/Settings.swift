import Foundation
import Logging

/// Everything Parley can be configured with, as one typed value.
///
/// `Settings.load(from:)` is the only place that reads `PARLEY_*` variables; tests build a
/// `Settings` in code. Every variable is listed in the README's configuration table.
public struct Settings: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        case development, production, testing
    }

    public enum Database: Sendable, Equatable {
        public var isSQLite: Bool {
            if case .postgres = self { return false }
            return true
        }

        /// An SQLite file (created if missing).
        case sqlite(path: String)
        /// A private SQLite database that lives as long as the application (tests).
        case sqliteInMemory
        /// A PostgreSQL server; `searchPath` isolates a schema (tests use one per test).
        case postgres(url: String, searchPath: String? = nil)
    }

    /// The HMAC algorithms an access token may be signed with. Only the configured one is accepted.
    public enum TokenAlgorithm: String, Sendable, CaseIterable {
        case hs256 = "HS256", hs384 = "HS384", hs512 = "HS512"
    }

    public struct LoginThrottle: Sendable {
        /// Failures (per handle and per address) after which each further attempt is delayed.
        public var slowAfter: Int = 5
        /// Failures after which attempts are refused with 429 until the window passes.
        public var blockAfter: Int = 10
        /// How long a failure counts.
        public var window: Duration = .seconds(15 * 60)
        /// The first delay once slowing starts; it doubles with every further failure.
        public var baseDelay: Duration = .milliseconds(250)
        public var maxDelay: Duration = .seconds(2)
        public init() {}
    }

    public var mode: Mode = .development
    public var host: String = "127.0.0.1"
    public var port: Int = 8080
    public var database: Database = .sqlite(path: "parley.sqlite")
    /// PostgreSQL pool size per event loop (there is one event loop per core).
    public var postgresConnectionsPerEventLoop: Int = 4
    /// Where development secrets are generated (mode 0600).
    public var dataDirectory: String = ".parley"
    /// The server secret that signs access tokens and CSRF tokens. `nil` means "generate a
    /// development secret"; production refuses to start without it.
    public var secretKey: String?
    public var tokenAlgorithm: TokenAlgorithm = .hs256
    public var accessTokenLifetime: Duration = .seconds(15 * 60)
    public var refreshTokenLifetime: Duration = .seconds(30 * 24 * 3600)
    public var sessionLifetime: Duration = .seconds(30 * 24 * 3600)
    public var bcryptCost: Int = 12
    /// The largest request body accepted, in bytes; larger bodies get 413.
    public var maxBodyBytes: Int = 256 * 1024
    /// The longest message body, in characters after trimming.
    public var maxMessageLength: Int = 4000
    /// How often an idle event stream gets a heartbeat frame.
    public var heartbeatInterval: Duration = .seconds(20)
    /// A connection that neither sends nor receives anything this long is closed, so a client
    /// that stops halfway through a request cannot hold it forever. Longer than a proxy's idle
    /// pool timeout (nginx: 60 s), and at least twice the heartbeat (event streams stay open).
    public var idleTimeout: Duration = .seconds(75)
    /// Frames a real-time connection may fall behind before it is closed with its resume point.
    public var eventBufferSize: Int = 1024
    /// The share of conversations, in percent, a model's canary version scores.
    public var modelCanaryPercent: Int = 10
    /// How many of the latest messages a served model version's drift is measured over.
    public var modelDriftWindow: Int = 1000
    /// Open event connections (WebSocket or SSE) one user may hold on one node; more get 429.
    public var maxConnectionsPerUser: Int = 16
    /// Whether `presence` frames (online/away/offline) are sent at all.
    public var presenceEnabled: Bool = true
    /// How long a user with no connection left stays shown online (reconnects within it are
    /// not announced).
    public var presenceGrace: Duration = .seconds(10)
    /// Presence changes are pushed to the members of conversations up to this size; members
    /// of bigger ones subscribe to the people they show (`presence.subscribe`).
    public var presencePushLimit: Int = 100
    /// How long events stay replayable; a client with an older cursor is told to resync.
    public var eventRetention: Duration = .seconds(7 * 24 * 3600)
    /// How often a serving node deletes events older than `eventRetention`; `nil`: never
    /// (tests prune by hand).
    public var eventPruneInterval: Duration? = .seconds(3600)
    public var logLevel: Logger.Level = .info
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    public var trustForwardedFor: Bool = false
    /// `PARLEY_REGISTRATION=invite`: registering needs an invite link (site administrators
    /// create them; the first administrator comes from `parley create-admin`).
    public var registrationNeedsInvite: Bool = false
    /// Origins besides the server's own whose pages may open WebSockets with the session
    /// cookie (`PARLEY_ALLOWED_ORIGINS`, comma-separated, such as https://chat.example.com).
    public var allowedOrigins: [String] = []
    public var loginThrottle = LoginThrottle()
    /// How this node runs background jobs.
    var jobWorker = JobWorker.Options()
    /// Where assistants' models are served (`PARLEY_LLM_*`); none means assistants answer
    /// that no model is configured.
    public var modelProviders: [ModelProvider] = []
    /// MCP servers whose tools assistants may use (`PARLEY_MCP_*`).
    public var mcpServers: [MCPServerConfig] = []
    /// Apply pending migrations on `serve` (development default); production refuses instead.
    public var autoMigrate: Bool = true
    /// Uploaded files: where their bytes are kept, how large one may be, which types (sniffed
    /// from the bytes) are accepted.
    public var files = Files()
    /// E-mail digests of what stays unread; nil: off (`PARLEY_SMTP_URL` turns them on).
    public var email: Email?
    /// The server's address as people reach it (links in e-mail); nil: `http://host:port`.
    public var publicURL: String?

    public struct Email: Sendable, Equatable {
        /// `smtp://[user:password@]host[:port][?tls=required|off]` or `smtps://…`. Holds a
        /// password: never logged.
        public var smtpURL: String
        /// The sender address.
        public var from: String
        /// How long a notification may stay unread before a digest reports it.
        public var digestDelay: Duration = .seconds(15 * 60)

        public init(smtpURL: String, from: String, digestDelay: Duration = .seconds(15 * 60)) {
            self.smtpURL = smtpURL
            self.from = from
            self.digestDelay = digestDelay
        }
    }

    /// Web Push to people's browsers; nil: off (`PARLEY_PUSH_SUBJECT` turns it on).
    public var webPush: WebPush?

    public struct WebPush: Sendable, Equatable {
        /// The contact push services see (RFC 8292): `mailto:admin@example.com` or an https URL.
        public var subject: String
        /// Accept `http:` push endpoints (a push service on a private network, or tests);
        /// browsers' own services are all https.
        public var allowHTTPEndpoints = false

        public init(subject: String, allowHTTPEndpoints: Bool = false) {
            self.subject = subject
            self.allowHTTPEndpoints = allowHTTPEndpoints
        }
    }

    public struct Files: Sendable, Equatable {
        public enum Store: String, Sendable, CaseIterable {
            /// A folder on this machine (`directory`): one node, or nodes sharing that folder.
            case disk
            /// The database itself, in chunks: every node of a cluster reads the same bytes.
            case database
        }

        /// nil: `disk` on SQLite, `database` on PostgreSQL (whose nodes may share no disk).
        public var store: Store?
        /// The disk store's folder, and where uploads are staged while they arrive (nil:
        /// `files` inside `dataDirectory`).
        public var directory: String?
        public var maxBytes: Int = 25 * 1024 * 1024
        /// Media types accepted, as sniffed; `image/*` accepts every image type Parley knows.
        public var allowedTypes: [String] = FileType.defaultAllowed.sorted()
        /// How long an upload no message carries is kept.
        public var unattachedLifetime: Duration = .seconds(24 * 3600)

        public init() {}
    }

    public init() {}

    /// Cookies carry `Secure` in production (served behind TLS).
    public var secureCookies: Bool { mode == .production }

    /// Settings for tests: in-memory SQLite and cheap password hashing.
    public static func testing(database: Database = .sqliteInMemory) -> Settings {
        var settings = Settings()
        settings.mode = .testing
        settings.database = database
        settings.secretKey = "test-secret-key-that-is-at-least-32-bytes-long"
        settings.bcryptCost = 4
        // Tests read event streams frame by frame; a heartbeat would only get in the way.
        settings.heartbeatInterval = .seconds(3600)
        settings.eventPruneInterval = nil
        // Tests run in parallel, each with its own application and pool.
        settings.postgresConnectionsPerEventLoop = 2
        settings.logLevel = .info
        settings.autoMigrate = true
        return settings
    }
}

extension Settings {
    /// The minimum length of `PARLEY_SECRET_KEY`.
    static let minimumSecretLength = 32

    /// Builds settings from `PARLEY_*` variables. Unset variables keep their defaults.
    public static func load(from environment: [String: String]) throws -> Settings {
        var settings = Settings()
        var problems: [String] = []
        let env = environment.filter { $0.key.hasPrefix("PARLEY_") && !$0.value.isEmpty }

        if let raw = env["PARLEY_ENV"] {
            if let mode = Mode(rawValue: raw.lowercased()) { settings.mode = mode }
            else { problems.append("PARLEY_ENV must be one of \(Mode.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(raw)\"") }
        }
        if let host = env["PARLEY_HOST"] {
            if Self.isListenAddress(host) { settings.host = host }
            else { problems.append("PARLEY_HOST must be an IP address or a host name to listen on, not \"\(host)\"") }
        }
        if let raw = env["PARLEY_PORT"] {
            if let port = Int(raw), (1...65535).contains(port) { settings.port = port }
            else { problems.append("PARLEY_PORT must be a port number (1-65535), not \"\(raw)\"") }
        }
        if let url = env["PARLEY_DATABASE_URL"] {
            if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
                settings.database = .postgres(url: url)
            } else if url.hasPrefix("sqlite://") {
                settings.database = .sqlite(path: String(url.dropFirst("sqlite://".count)))
            } else {
                problems.append("PARLEY_DATABASE_URL must start with postgres://, postgresql:// or sqlite://")
            }
        }
        if let raw = env["PARLEY_DB_POOL_SIZE"] {
            if let size = Int(raw), (1...100).contains(size) { settings.postgresConnectionsPerEventLoop = size }
            else { problems.append("PARLEY_DB_POOL_SIZE must be a number of connections per event loop in 1...100") }
        }
        if let dir = env["PARLEY_DATA_DIR"] { settings.dataDirectory = dir }
        if let secret = env["PARLEY_SECRET_KEY"] {
            if secret.utf8.count >= minimumSecretLength { settings.secretKey = secret }
            else { problems.append("PARLEY_SECRET_KEY must be at least \(minimumSecretLength) bytes (try: openssl rand -base64 48)") }
        }
        if let raw = env["PARLEY_TOKEN_ALGORITHM"] {
            if let alg = TokenAlgorithm(rawValue: raw.uppercased()) { settings.tokenAlgorithm = alg }
            else { problems.append("PARLEY_TOKEN_ALGORITHM must be one of \(TokenAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))") }
        }
        func seconds(_ name: String, range: ClosedRange<Int>, apply: (Duration) -> Void) {
            guard let raw = env[name] else { return }
            if let value = Int(raw), range.contains(value) { apply(.seconds(value)) }
            else { problems.append("\(name) must be a whole number of seconds in \(range.lowerBound)...\(range.upperBound)") }
        }
        seconds("PARLEY_ACCESS_TOKEN_TTL", range: 60...86_400) { settings.accessTokenLifetime = $0 }
        seconds("PARLEY_REFRESH_TOKEN_TTL", range: 300...31_536_000) { settings.refreshTokenLifetime = $0 }
        seconds("PARLEY_SESSION_TTL", range: 300...31_536_000) { settings.sessionLifetime = $0 }
        if let raw = env["PARLEY_BCRYPT_COST"] {
            if let cost = Int(raw), (4...31).contains(cost) { settings.bcryptCost = cost }
            else { problems.append("PARLEY_BCRYPT_COST must be in 4...31") }
        }
        if let raw = env["PARLEY_MAX_BODY_BYTES"] {
            if let bytes = Int(raw), bytes >= 1024 { settings.maxBodyBytes = bytes }
            else { problems.append("PARLEY_MAX_BODY_BYTES must be a number of bytes, at least 1024") }
        }
        if let raw = env["PARLEY_MAX_MESSAGE_LENGTH"] {
            if let length = Int(raw), (1...100_000).contains(length) { settings.maxMessageLength = length }
            else { problems.append("PARLEY_MAX_MESSAGE_LENGTH must be a number of characters in 1...100000") }
        }
        if let raw = env["PARLEY_JOB_CONCURRENCY"] {
            if let count = Int(raw), (1...1000).contains(count) { settings.jobWorker.concurrency = count }
            else { problems.append("PARLEY_JOB_CONCURRENCY must be a number of jobs in 1...1000") }
        }
        if let raw = env["PARLEY_EVENT_BUFFER"] {
            if let size = Int(raw), (16...1_000_000).contains(size) { settings.eventBufferSize = size }
            else { problems.append("PARLEY_EVENT_BUFFER must be a number of frames in 16...1000000") }
        }
        if let raw = env["PARLEY_MODEL_CANARY_PERCENT"] {
            if let percent = Int(raw), (0...100).contains(percent) { settings.modelCanaryPercent = percent }
            else { problems.append("PARLEY_MODEL_CANARY_PERCENT must be a percentage in 0...100") }
        }
        if let raw = env["PARLEY_MODEL_DRIFT_WINDOW"] {
            if let size = Int(raw), (100...1_000_000).contains(size) { settings.modelDriftWindow = size }
            else { problems.append("PARLEY_MODEL_DRIFT_WINDOW must be a number of messages in 100...1000000") }
        }
        if let raw = env["PARLEY_MAX_CONNECTIONS_PER_USER"] {
            if let size = Int(raw), (1...10_000).contains(size) { settings.maxConnectionsPerUser = size }
            else { problems.append("PARLEY_MAX_CONNECTIONS_PER_USER must be in 1...10000") }
        }
        if let raw = env["PARLEY_PRESENCE"] {
            if let flag = parseBool(raw) { settings.presenceEnabled = flag }
            else { problems.append("PARLEY_PRESENCE must be true or false") }
        }
        seconds("PARLEY_PRESENCE_GRACE", range: 0...3600) { settings.presenceGrace = $0 }
        if let raw = env["PARLEY_PRESENCE_PUSH_LIMIT"] {
            if let size = Int(raw), (2...100_000).contains(size) { settings.presencePushLimit = size }
            else { problems.append("PARLEY_PRESENCE_PUSH_LIMIT must be a number of members in 2...100000") }
        }
        seconds("PARLEY_EVENT_RETENTION", range: 3600...31_536_000) { settings.eventRetention = $0 }
        seconds("PARLEY_IDLE_TIMEOUT", range: 45...86_400) { settings.idleTimeout = $0 }
        if let raw = env["PARLEY_LOG_LEVEL"] {
            // `trace` is not offered: Vapor's HTTP decoder logs raw request heads at that level,
            // which would put bearer tokens and cookies into the log.
            if let level = Logger.Level(rawValue: raw.lowercased()), level != .trace { settings.logLevel = level }
            else { problems.append("PARLEY_LOG_LEVEL must be one of debug, info, notice, warning, error, critical") }
        }
        if let raw = env["PARLEY_REGISTRATION"] {
            switch raw.lowercased() {
            case "open": settings.registrationNeedsInvite = false
            case "invite": settings.registrationNeedsInvite = true
            default: problems.append("PARLEY_REGISTRATION must be open or invite")
            }
        }
        if let raw = env["PARLEY_TRUST_FORWARDED_FOR"] {
            if let flag = parseBool(raw) { settings.trustForwardedFor = flag }
            else { problems.append("PARLEY_TRUST_FORWARDED_FOR must be true or false") }
        }
        if let raw = env["PARLEY_ALLOWED_ORIGINS"] {
            for origin in raw.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !origin.isEmpty {
                if let url = URL(string: origin), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil,
                   url.path.isEmpty || url.path == "/" {
                    settings.allowedOrigins.append(origin.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "/")))
                } else {
                    problems.append("PARLEY_ALLOWED_ORIGINS: \"\(origin)\" is not an origin (scheme://host[:port], such as https://chat.example.com)")
                }
            }
        }
        if let raw = env["PARLEY_FILE_STORE"] {
            if let store = Files.Store(rawValue: raw.lowercased()) { settings.files.store = store }
            else { problems.append("PARLEY_FILE_STORE must be one of \(Files.Store.allCases.map(\.rawValue).joined(separator: ", "))") }
        }
        if let dir = env["PARLEY_FILES_DIR"] { settings.files.directory = dir }
        if let raw = env["PARLEY_MAX_UPLOAD_BYTES"] {
            if let bytes = Int(raw), (1...(1 << 40)).contains(bytes) { settings.files.maxBytes = bytes }
            else { problems.append("PARLEY_MAX_UPLOAD_BYTES must be a number of bytes, at least 1") }
        }
        if let raw = env["PARLEY_UPLOAD_TYPES"] {
            let types = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
            let unknown = types.filter { !FileType.isKnownPattern($0) }
            if types.isEmpty || !unknown.isEmpty {
                problems.append("PARLEY_UPLOAD_TYPES must list media types Parley recognises (\(FileType.known.sorted().joined(separator: ", ")), or image/*), not \"\(unknown.joined(separator: ", "))\"")
            } else {
                settings.files.allowedTypes = types
            }
        }
        if let subject = env["PARLEY_PUSH_SUBJECT"] {
            if subject.hasPrefix("mailto:") || subject.hasPrefix("https://") { settings.webPush = WebPush(subject: subject) }
            else { problems.append("PARLEY_PUSH_SUBJECT must be a mailto: or https: contact for push services, such as mailto:admin@example.com") }
        }
        if let raw = env["PARLEY_PUSH_ALLOW_HTTP"] {
            if let flag = parseBool(raw) { settings.webPush?.allowHTTPEndpoints = flag }
            else { problems.append("PARLEY_PUSH_ALLOW_HTTP must be true or false") }
        }
        if let url = env["PARLEY_SMTP_URL"] {
            if SMTPClient.Server.parse(url) == nil {
                // The URL may hold a password: name the variable, never echo it.
                problems.append("PARLEY_SMTP_URL must be smtp://[user:password@]host[:port][?tls=required|off] or smtps://…")
            } else if let from = env["PARLEY_EMAIL_FROM"], from.contains("@"), !from.contains(where: { $0 == "<" || $0 == ">" || $0.isNewline }) {
                settings.email = Email(smtpURL: url, from: from)
            } else {
                problems.append("PARLEY_EMAIL_FROM must be the sender's address (such as parley@example.com) when PARLEY_SMTP_URL is set")
            }
        }
        if let raw = env["PARLEY_EMAIL_DIGEST_DELAY"] {
            if let seconds = Int(raw), (1...86_400).contains(seconds) { settings.email?.digestDelay = .seconds(seconds) }
            else { problems.append("PARLEY_EMAIL_DIGEST_DELAY must be a whole number of seconds in 1...86400") }
        }
        if let raw = env["PARLEY_PUBLIC_URL"] {
            if let url = URL(string: raw), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil {
                settings.publicURL = raw.hasSuffix("/") ? String(raw.dropLast()) : raw
            } else {
                problems.append("PARLEY_PUBLIC_URL must be the http(s) address people reach Parley at, such as https://chat.example.com")
            }
        }
        settings.modelProviders = ModelProvider.load(from: env, problems: &problems)
        settings.mcpServers = MCPServerConfig.load(from: env, problems: &problems)
        settings.autoMigrate = settings.mode != .production
        if let raw = env["PARLEY_AUTO_MIGRATE"] {
            if let flag = parseBool(raw) { settings.autoMigrate = flag }
            else { problems.append("PARLEY_AUTO_MIGRATE must be true or false") }
        }
        if settings.mode == .production {
            if settings.secretKey == nil, env["PARLEY_SECRET_KEY"] == nil {
                problems.append("PARLEY_SECRET_KEY is required in production (at least \(minimumSecretLength) bytes; try: openssl rand -base64 48)")
            }
        }
        if !problems.isEmpty { throw SettingsError(problems: problems) }
        return settings
    }

    private static func parseBool(_ raw: String) -> Bool? {
        switch raw.lowercased() {
        case "1", "true", "yes", "on": true
        case "0", "false", "no", "off": false
        default: nil
        }
    }
}

extension Settings {
    /// An IPv4 or IPv6 literal, or a DNS host name (letters, digits, '-' and '.'). A name made
    /// only of digits and dots must be a valid IPv4 address (`999.1.1.1` is not).
    static func isListenAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1 { return true }
        guard !host.isEmpty, host.count <= 253 else { return false }
        if host.allSatisfy({ $0.isNumber || $0 == "." }) { return false }
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.count) && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        }
    }
}
