import AgentGraphSQL
import Fluent
import SQLKit

struct CreateAssistants: AsyncMigration {
    var name: String { "2026-12-02-CreateAssistants" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Assistant.schema)
            .field("id", .uuid, .identifier(auto: false), .references("users", "id", onDelete: .cascade))
            .field("provider", .string, .required)
            .field("model", .string, .required)
            .field("system_prompt", .string, .required)
            .field("tool_calling", .string, .required)
            .field("tool_choice", .string, .required)
            .field("tools", .string, .required)
            .field("approval_tools", .string, .required)
            .field("http_tools", .string, .required)
            .field("busy_policy", .string, .required)
            .field("daily_tokens_per_conversation", .int)
            .field("daily_tokens_per_user", .int)
            .field("max_steps", .int, .required)
            .field("run_timeout_seconds", .int, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .create()
        try await database.schema(AssistantRun.schema)
            .field("id", .uuid, .identifier(auto: false))
            .field("assistant_id", .uuid, .required, .references("users", "id", onDelete: .cascade))
            .field("conversation_id", .uuid, .required, .references("conversations", "id", onDelete: .cascade))
            .field("trigger_message_id", .uuid, .required)
            .field("trigger_seq", .int, .required)
            .field("requester_id", .uuid, .required, .references("users", "id", onDelete: .cascade))
            .field("status", .string, .required)
            .field("reply_seq", .int)
            .field("error", .string)
            .field("prompt_tokens", .int, .required)
            .field("completion_tokens", .int, .required)
            .field("cost_usd", .double, .required)
            .field("approval", .string)
            .field("decision", .string)
            .field("approval_round", .int, .required)
            .field("cancel_requested", .bool, .required)
            .field("citations", .string)
            .field("created_at", .datetime, .required)
            .field("started_at", .datetime)
            .field("finished_at", .datetime)
            .unique(on: "assistant_id", "trigger_message_id", name: "uq_assistant_runs_trigger")
            .create()
        try await database.schema(AssistantRunStep.schema)
            .field("id", .uuid, .identifier(auto: false))
            .field("run_id", .uuid, .required, .references(AssistantRun.schema, "id", onDelete: .cascade))
            .field("position", .int, .required)
            .field("kind", .string, .required)
            .field("name", .string, .required)
            .field("started_at", .datetime, .required)
            .field("duration_ms", .double, .required)
            .field("detail", .string, .required)
            .create()
        try await database.schema("assistant_cursor")
            .field("name", .string, .identifier(auto: false))
            .field("position", .int, .required)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "ix_assistant_runs_conversation").on(AssistantRun.schema)
            .column("conversation_id").column("assistant_id").column("status").run()
        try await sql.create(index: "ix_assistant_runs_budget").on(AssistantRun.schema).column("assistant_id").column("created_at").run()
        try await sql.create(index: "ix_assistant_run_steps_run").on(AssistantRunStep.schema).column("run_id").column("position").run()
        // The dispatcher starts at the end of the log: messages sent before assistants existed
        // start nothing.
        try await sql.raw("INSERT INTO assistant_cursor (name, position) SELECT 'dispatch', COALESCE(MAX(id), 0) FROM events").run()
        // The runs' checkpoints and the assistants' long-term memory (AgentGraph's tables).
        try await SQLCheckpointSaver(database: sql).prepare()
        try await SQLStore(database: sql).prepare()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("assistant_cursor").delete()
        try await database.schema(AssistantRunStep.schema).delete()
        try await database.schema(AssistantRun.schema).delete()
        try await database.schema(Assistant.schema).delete()
        guard let sql = database as? any SQLDatabase else { return }
        for table in ["agentgraph_checkpoints", "agentgraph_threads", "agentgraph_store"] {
            try await sql.drop(table: table).ifExists().run()
        }
    }
}
