import AgentGraph
import Foundation
import Logging
import MCP
import NIOConcurrencyHelpers
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// An MCP server the operator configured (`PARLEY_MCP_SERVERS`, `PARLEY_MCP_<NAME>_COMMAND`
/// for a program spoken to over stdio, or `PARLEY_MCP_<NAME>_URL` for streamable HTTP).
/// Assistants list which of them they may use; their tools appear as `<server>__<tool>`.
public struct MCPServerConfig: Sendable, Equatable {
    public enum Transport: Sendable, Equatable {
        /// A command run with `/bin/sh -c`, spoken to over its standard input and output.
        case stdio(command: String)
        /// A streamable-HTTP endpoint.
        case http(url: String)
    }

    public var name: String
    public var transport: Transport

    public init(name: String, transport: Transport) {
        self.name = name
        self.transport = transport
    }

    static func load(from env: [String: String], problems: inout [String]) -> [MCPServerConfig] {
        guard let list = env["PARLEY_MCP_SERVERS"] else { return [] }
        var servers: [MCPServerConfig] = []
        for name in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !name.isEmpty {
            guard name.range(of: "^[a-z][a-z0-9_]{0,31}$", options: .regularExpression) != nil, !name.contains("__") else {
                problems.append("PARLEY_MCP_SERVERS: \"\(name)\" is not a server name (a letter, then up to 31 of a-z 0-9 _)")
                continue
            }
            let prefix = "PARLEY_MCP_\(name.uppercased())_"
            switch (env[prefix + "COMMAND"], env[prefix + "URL"]) {
            case (let command?, nil):
                servers.append(MCPServerConfig(name: name, transport: .stdio(command: command)))
            case (nil, let url?):
                if let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil {
                    servers.append(MCPServerConfig(name: name, transport: .http(url: url)))
                } else {
                    problems.append("\(prefix)URL must be an http:// or https:// URL")
                }
            default:
                problems.append("the MCP server \"\(name)\" needs exactly one of \(prefix)COMMAND and \(prefix)URL")
            }
        }
        return servers
    }
}

/// This node's connections to the configured MCP servers, opened on first use and opened
/// again after a failure. Hand-written glue: the MCP SDK gives the client and transports,
/// not a pool of servers.
final class MCPServers: Sendable {
    struct ToolInfo: Sendable {
        let definition: ToolDefinitionValue
        let server: String
        let tool: String
    }

    /// A tool's name, description and JSON Schema, as the model sees it.
    struct ToolDefinitionValue: Sendable {
        let name: String
        let description: String
        let parameters: JSONValue
    }

    private final class Connection: Sendable {
        let client: MCP.Client
        let process: Process?
        let tools: [Tool]

        init(client: MCP.Client, process: Process?, tools: [Tool]) {
            self.client = client
            self.process = process
            self.tools = tools
        }
    }

    let configs: [String: MCPServerConfig]
    private let connections = NIOLockedValueBox<[String: Task<Connection, any Error>]>([:])
    private let logger: Logger

    init(_ configs: [MCPServerConfig], logger: Logger) {
        self.configs = Dictionary(configs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.logger = logger
    }

    var names: [String] { configs.keys.sorted() }

    /// The tools of the servers named, as `<server>__<tool>`. A server that cannot be reached
    /// is left out (and logged), so one broken server does not stop an assistant.
    func tools(of servers: [String]) async -> [ToolInfo] {
        var found: [ToolInfo] = []
        for server in servers where configs[server] != nil {
            do {
                for tool in try await connection(server).tools {
                    let parameters = (try? JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(tool.inputSchema)))
                        ?? ["type": "object"]
                    found.append(ToolInfo(definition: .init(name: "\(server)__\(tool.name)", description: tool.description ?? tool.name,
                                                            parameters: parameters),
                                          server: server, tool: tool.name))
                }
            } catch {
                logger.warning("an MCP server could not be reached; its tools are left out",
                               metadata: ["server": .string(server), "error": .string(String(describing: error))])
            }
        }
        return found
    }

    /// Calls a tool; the text of its content, and whether the server says it failed.
    func call(server: String, tool: String, arguments: JSONValue) async throws -> (text: String, isError: Bool) {
        let values = try JSONDecoder().decode([String: Value].self, from: JSONEncoder().encode(arguments))
        let connection = try await connection(server)
        do {
            let result = try await connection.client.callTool(name: tool, arguments: values)
            return (Self.text(result.content), result.isError ?? false)
        } catch {
            // The server may have died: forget the connection so the next call opens a new one.
            forget(server, connection)
            throw error
        }
    }

    static func text(_ content: [Tool.Content]) -> String {
        content.map { item -> String in
            switch item {
            case .text(let text, _, _): text
            case .image(_, let mimeType, _, _): "[an image, \(mimeType)]"
            case .audio(_, let mimeType, _, _): "[audio, \(mimeType)]"
            case .resource(let resource, _, _): "[a resource: \(resource.uri)]"
            case .resourceLink(let uri, _, _, _, _, _): "[a link to \(uri)]"
            }
        }.joined(separator: "\n")
    }

    func shutdown() async {
        let tasks = connections.withLockedValue { all in
            defer { all.removeAll() }
            return Array(all.values)
        }
        for task in tasks {
            if let connection = try? await task.value {
                await connection.client.disconnect()
                if let process = connection.process, process.isRunning { process.terminate() }
            }
        }
    }

    private func forget(_ server: String, _ connection: Connection) {
        let task = connections.withLockedValue { $0.removeValue(forKey: server) }
        task?.cancel()
        Task {
            await connection.client.disconnect()
            if let process = connection.process, process.isRunning { process.terminate() }
        }
    }

    private func connection(_ server: String) async throws -> Connection {
        guard let config = configs[server] else { throw ToolFailure("no MCP server named \(server) is configured") }
        let task = connections.withLockedValue { all -> Task<Connection, any Error> in
            if let existing = all[server] { return existing }
            let task = Task { try await Self.open(config, logger: self.logger) }
            all[server] = task
            return task
        }
        do {
            return try await task.value
        } catch {
            connections.withLockedValue { all in
                if all[server] == task { all[server] = nil }
            }
            throw error
        }
    }

    private static func open(_ config: MCPServerConfig, logger: Logger) async throws -> Connection {
        let client = MCP.Client(name: "parley", version: "1.0")
        var process: Process?
        switch config.transport {
        case .stdio(let command):
            let child = Process()
            child.executableURL = URL(fileURLWithPath: "/bin/sh")
            child.arguments = ["-c", command]
            let input = Pipe(), output = Pipe()
            child.standardInput = input
            child.standardOutput = output
            child.standardError = FileHandle.nullDevice
            try child.run()
            process = child
            let transport = StdioTransport(input: FileDescriptor(rawValue: output.fileHandleForReading.fileDescriptor),
                                           output: FileDescriptor(rawValue: input.fileHandleForWriting.fileDescriptor),
                                           logger: logger)
            try await client.connect(transport: transport)
        case .http(let url):
            guard let endpoint = URL(string: url) else { throw ToolFailure("the MCP server's URL is not valid") }
            #if os(Linux)
            // Server-sent events need EventSource, which the SDK has only on Apple platforms.
            let transport = HTTPClientTransport(endpoint: endpoint, streaming: false, logger: logger)
            #else
            let transport = HTTPClientTransport(endpoint: endpoint, logger: logger)
            #endif
            try await client.connect(transport: transport)
        }
        var tools: [Tool] = []
        var cursor: String?
        repeat {
            let page = try await client.listTools(cursor: cursor)
            tools += page.tools
            cursor = page.nextCursor
        } while cursor != nil && tools.count < 500
        return Connection(client: client, process: process, tools: tools)
    }
}

