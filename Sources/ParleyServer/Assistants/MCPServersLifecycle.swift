import Vapor
/// Closes the MCP connections (and stops stdio servers) when the application shuts down.
struct MCPServersLifecycle: LifecycleHandler {
    let servers: MCPServers

    func shutdownAsync(_ application: Application) async {
        await servers.shutdown()
    }
}
