import Fluent
import Vapor

/// `parley assistant create --handle NAME --provider NAME --model NAME [options]` and
/// `parley assistant list`: manage assistants from the server's shell (the same rules as
/// `/v1/assistants`).
struct AssistantCommand: AsyncCommand {
    struct Signature: CommandSignature {
        @Argument(name: "action", help: "create or list")
        var action: String
        @Option(name: "handle", help: "The assistant's handle (3-32 of a-z 0-9 _ . -).")
        var handle: String?
        @Option(name: "display-name", help: "The name shown to others (defaults to the handle).")
        var displayName: String?
        @Option(name: "provider", help: "A configured model provider (PARLEY_LLM_PROVIDERS; `default` for PARLEY_LLM_URL).")
        var provider: String?
        @Option(name: "model", help: "The model's name at the provider.")
        var model: String?
        @Option(name: "system-prompt", help: "Instructions the assistant always follows.")
        var systemPrompt: String?
        @Option(name: "tools", help: "Comma-separated built-in tools: search_history, recent_messages, remember, recall.")
        var tools: String?
        @Option(name: "approval-tools", help: "Comma-separated tools that need a person's approval before they run.")
        var approvalTools: String?
        @Option(name: "tool-calling", help: "native (the provider's tool calls) or json (schema-constrained JSON, for small local models).")
        var toolCalling: String?
        @Option(name: "mcp-servers", help: "Comma-separated configured MCP servers (PARLEY_MCP_SERVERS) whose tools it may use.")
        var mcpServers: String?
        @Option(name: "tool-choice", help: "auto, or required (the first turn must call a tool).")
        var toolChoice: String?
        @Option(name: "busy-policy", help: "When asked during a run: queue, reject or interrupt.")
        var busyPolicy: String?
    }

    var help: String { "Creates or lists assistants." }

    func run(using context: CommandContext, signature: Signature) async throws {
        guard let dependencies = context.application.storage[AssistantsKey.self] else { return }
        try await prepareDatabase(context.application)
        let service = dependencies.service(context.application.db)
        // The server's own shell acts as an administrator.
        let caller = AssistantService.Caller(userID: UUID(), isAdministrator: true)
        do {
            switch signature.action {
            case "create":
                var input = AssistantInput()
                input.handle = signature.handle
                input.displayName = signature.displayName
                input.provider = signature.provider
                input.model = signature.model
                input.systemPrompt = signature.systemPrompt
                input.tools = signature.tools.map(Self.list)
                input.approvalTools = signature.approvalTools.map(Self.list)
                input.toolCalling = signature.toolCalling
                input.busyPolicy = signature.busyPolicy
                input.toolChoice = signature.toolChoice
                input.mcpServers = signature.mcpServers.map(Self.list)
                let created = try await service.create(input, by: caller)
                context.console.success("Created assistant @\(created.handle) (\(created.id)) using \(created.provider)/\(created.model).")
                if !created.providerConfigured {
                    context.console.warning("Provider \"\(created.provider)\" is not configured on this server yet; until it is, the assistant answers that no model is configured.")
                }
            case "list":
                for assistant in try await service.list(by: caller) {
                    context.console.output("@\(assistant.handle)\t\(assistant.id)\t\(assistant.provider)/\(assistant.model)\(assistant.providerConfigured ? "" : " (provider not configured)")")
                }
            default:
                context.console.error("Unknown action \"\(signature.action)\"; use create or list.")
                throw ExitCode(1)
            }
        } catch let error as ValidationError {
            context.console.error("Could not create the assistant: " + error.errors.map { "\($0.field) \($0.message)" }.joined(separator: "; "))
            throw ExitCode(1)
        } catch let error as AccountError {
            context.console.error("Could not create the assistant: " + (ProblemError(error).errors ?? []).map { "\($0.field) \($0.message)" }.joined(separator: "; "))
            throw ExitCode(1)
        }
    }

    static func list(_ raw: String) -> [String] {
        raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
