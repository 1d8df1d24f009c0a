import NIOPosix
import Vapor

/// Shuts a thread pool of the application's own down with the application.
struct ThreadPoolLifecycle: LifecycleHandler {
    let pool: NIOThreadPool

    func shutdownAsync(_ application: Application) async {
        try? await pool.shutdownGracefully()
    }
}
