import AgentGraph
import AsyncHTTPClient
import Fluent
import Foundation
import LLM
import NIOCore
import NIOHTTP1

/// Who is asking and where: every tool acts with the rights of the member who asked, in
/// conversations the assistant is also a member of, never more.
struct ToolScope: Sendable {
    let runID: UUID
    let callID: String
    let assistantID: UUID
    let conversationID: UUID
    let requesterID: UUID
    let db: any Database
    let chat: ChatDependencies
    let store: any GraphStore
}

/// A tool an assistant may call. Its result goes back to the model as quoted data.
protocol AssistantTool: Sendable {
    var definition: ToolDefinition { get }
    /// Whether calling it changes anything outside the run (a write, a request to another
    /// system). Such a call is an AgentGraph task: its result is checkpointed and a resume
    /// does not make it again. A call that only reads runs again on a resume instead, and
    /// does not wait for the run's checkpoints to be stored first (unless the assistant says
    /// it needs approval: such a tool is always handled as one that changes things).
    var changesThings: Bool { get }
    func run(_ arguments: JSONValue, scope: ToolScope) async throws -> JSONValue
}

extension AssistantTool {
    /// Unless a tool says otherwise, it may change things (an HTTP endpoint, an MCP tool).
    var changesThings: Bool { true }
}

/// A tool's failure the model should read (bad arguments, nothing visible): not a run failure.
struct ToolFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The tools Parley provides, and the assistant's administrator-configured HTTP tools.
enum AssistantTools {
    static let builtIn: [any AssistantTool] = [SearchHistoryTool(), RecentMessagesTool(), RememberTool(), RecallTool()]
    static var builtInNames: [String] { builtIn.map(\.definition.name) }

    /// The tools an assistant may use, by name.
    static func tools(for assistant: Assistant, client: HTTPClient, mcp: MCPServers) async -> [String: any AssistantTool] {
        var tools: [String: any AssistantTool] = [:]
        let allowed = Set(assistant.tools)
        for tool in builtIn where allowed.contains(tool.definition.name) { tools[tool.definition.name] = tool }
        for http in assistant.httpTools { tools[http.name] = HTTPEndpointTool(configuration: http, client: client) }
        for info in await mcp.tools(of: assistant.mcpServers) { tools[info.definition.name] = MCPTool(info: info, servers: mcp) }
        return tools
    }

    /// Access to a conversation for the requester, when the assistant is a member too.
    static func access(_ conversationID: UUID, scope: ToolScope) async throws -> ConversationService.Access {
        guard try await Membership.allMembers([scope.assistantID, scope.requesterID], of: conversationID, on: scope.db) else {
            throw ToolFailure("no such conversation (or you and the assistant are not both members of it)")
        }
        return try await scope.chat.conversations(scope.db).access(conversationID, userID: scope.requesterID)
    }

    static func lines(_ messages: [MessageDTO], on db: any Database) async throws -> JSONValue {
        let handles = try await User.handles(of: Set(messages.compactMap { UUID(wire: $0.authorID) }), on: db)
        return .array(messages.map { message in
            [
                "seq": .integer(Int64(message.seq)),
                "author": .string("@" + (UUID(wire: message.authorID).flatMap { handles[$0] } ?? "unknown")),
                "text": message.body.map { .string($0) } ?? .string("(deleted)"),
                "at": .string(message.createdAt.formatted(.iso8601)),
            ]
        })
    }
}

struct SearchHistoryTool: AssistantTool {
    let changesThings = false
    let definition = ToolDefinition(
        name: "search_history",
        description: "Full-text search of this conversation's messages. Returns matching messages with their seq, author and text.",
        parameters: [
            "type": "object",
            "properties": ["query": ["type": "string", "description": "Words to look for."]],
            "required": ["query"],
        ])

    func run(_ arguments: JSONValue, scope: ToolScope) async throws -> JSONValue {
        guard let query = arguments["query"]?.stringValue, !query.isEmpty else { throw ToolFailure("`query` must be a non-empty string") }
        _ = try await AssistantTools.access(scope.conversationID, scope: scope)
        let page: Page<SearchHitDTO>
        do {
            page = try await SearchService(db: scope.db).search(String(query.prefix(200)), conversationID: scope.conversationID.wire,
                                                                userID: scope.requesterID, cursor: nil, limit: 8)
        } catch is ValidationError {
            throw ToolFailure("the query has no words to search for")
        }
        return try await AssistantTools.lines(page.items.map(\.message), on: scope.db)
    }
}

struct RecentMessagesTool: AssistantTool {
    let changesThings = false
    let definition = ToolDefinition(
        name: "recent_messages",
        description: "The latest messages of this conversation (or of another conversation you and the asker are both in), oldest first.",
        parameters: [
            "type": "object",
            "properties": [
                "limit": ["type": "integer", "minimum": 1, "maximum": 50],
                "conversation_id": ["type": "string", "description": "Another conversation's id; this one when left out."],
            ],
        ])

    func run(_ arguments: JSONValue, scope: ToolScope) async throws -> JSONValue {
        var limit = 20
        if let raw = arguments["limit"] {
            guard case .integer(let value) = raw, (1...50).contains(value) else { throw ToolFailure("`limit` must be an integer in 1...50") }
            limit = Int(value)
        }
        var conversationID = scope.conversationID
        if let raw = arguments["conversation_id"], raw != .null {
            guard let text = raw.stringValue, let id = UUID(wire: text) else { throw ToolFailure("`conversation_id` must be a conversation id") }
            conversationID = id
        }
        _ = try await AssistantTools.access(conversationID, scope: scope)
        let messages = try await Message.window(in: conversationID, limit: limit, on: scope.db)
        return .array(messages.map { message in
            [
                "seq": .integer(Int64(message.seq)),
                "author": .string("@" + message.authorHandle),
                "text": .string(message.body),
                "at": .string(message.createdAt.formatted(.iso8601)),
            ]
        })
    }
}

/// Facts about the member who asked, kept across conversations in the AgentGraph store
/// under `["users", <id>, "memories"]`: each member's memories are theirs alone.
struct RememberTool: AssistantTool {
    let definition = ToolDefinition(
        name: "remember",
        description: "Remember a fact about the person asking, for later conversations.",
        parameters: ["type": "object", "properties": ["fact": ["type": "string"]], "required": ["fact"]])

    func run(_ arguments: JSONValue, scope: ToolScope) async throws -> JSONValue {
        guard let fact = arguments["fact"]?.stringValue, !fact.isEmpty else { throw ToolFailure("`fact` must be a non-empty string") }
        // Keyed by the call, so a call run again after a crash writes the same item.
        try await scope.store.put(["users", scope.requesterID.wire, "memories"], key: scope.runID.wire + ":" + scope.callID,
                                  value: ["fact": .string(String(fact.prefix(1000))), "conversation_id": .string(scope.conversationID.wire)])
        return ["remembered": .string(fact)]
    }
}

struct RecallTool: AssistantTool {
    let changesThings = false
    let definition = ToolDefinition(
        name: "recall",
        description: "Facts remembered about the person asking.",
        parameters: ["type": "object", "properties": ["query": ["type": "string", "description": "Optional words the facts should contain."]]])

    func run(_ arguments: JSONValue, scope: ToolScope) async throws -> JSONValue {
        let items = try await scope.store.search(["users", scope.requesterID.wire, "memories"], query: nil, filter: [:], limit: 50)
        let words = (arguments["query"]?.stringValue ?? "").lowercased().split(separator: " ").map(String.init)
        let facts = items.compactMap { $0.value["fact"]?.stringValue }.filter { fact in
            words.isEmpty || words.contains { fact.lowercased().contains($0) }
        }
        return .array(facts.prefix(20).map { .string($0) })
    }
}

/// An HTTP endpoint an administrator configured: a POST of the arguments as JSON to a fixed
/// URL. The model never chooses the address. The request carries `Idempotency-Key` (the run
/// and the call), so an endpoint can make a call that is retried after a crash count once.
struct HTTPEndpointTool: AssistantTool {
    let configuration: Assistant.HTTPTool
    let client: HTTPClient

    var definition: ToolDefinition {
        ToolDefinition(name: configuration.name, description: configuration.description, parameters: configuration.parameters)
    }

    static let maxResponseBytes = 16 * 1024

    func run(_ arguments: JSONValue, scope: ToolScope) async throws -> JSONValue {
        guard case .object = arguments else { throw ToolFailure("the arguments must be a JSON object") }
        var request = HTTPClientRequest(url: configuration.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: scope.runID.wire + ":" + scope.callID)
        request.headers.add(name: "User-Agent", value: "Parley assistant")
        request.body = .bytes(ByteBuffer(string: arguments.jsonText))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(15))
        } catch {
            throw ToolFailure("the endpoint could not be reached")
        }
        var body = try await response.body.collect(upTo: Self.maxResponseBytes * 4)
        let text = body.readString(length: min(body.readableBytes, Self.maxResponseBytes)) ?? ""
        guard (200..<300).contains(Int(response.status.code)) else {
            throw ToolFailure("the endpoint answered \(response.status.code)")
        }
        if let json = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) { return json }
        return .string(text)
    }
}

/// A tool of an MCP server the operator configured. It runs with the server's own rights
/// (the operator chooses what a server may do); the member who asked only chooses to ask.
struct MCPTool: AssistantTool {
    let info: MCPServers.ToolInfo
    let servers: MCPServers

    var definition: ToolDefinition {
        ToolDefinition(name: info.definition.name, description: info.definition.description, parameters: info.definition.parameters)
    }

    func run(_ arguments: JSONValue, scope: ToolScope) async throws -> JSONValue {
        guard case .object = arguments else { throw ToolFailure("the arguments must be a JSON object") }
        let result: (text: String, isError: Bool)
        do {
            result = try await servers.call(server: info.server, tool: info.tool, arguments: arguments)
        } catch let failure as ToolFailure {
            throw failure
        } catch {
            throw ToolFailure("the MCP server \(info.server) failed: \(error)")
        }
        if result.isError { throw ToolFailure(String(result.text.prefix(4000))) }
        if let json = try? JSONDecoder().decode(JSONValue.self, from: Data(result.text.utf8)) { return json }
        return .string(String(result.text.prefix(16 * 1024)))
    }
}
