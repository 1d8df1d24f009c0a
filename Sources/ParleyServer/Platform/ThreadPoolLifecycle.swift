import NIOPosix
import Vapor

/// Shuts a thread pool of the application's own down with the application.
struct ThreadPoolLifecycle: LifecycleHandler {
    let pool: NIOThreadPool

    func shutdownAsync(_ application: Application) async {
        try? await pool.shutdownGracefully()
    }
}

/// Closes the write gate's SQLite connection with the application.
struct DirectSQLiteLifecycle: LifecycleHandler {
    let writer: DirectSQLiteConnection

    func shutdownAsync(_ application: Application) async {
        writer.close()
    }
}
