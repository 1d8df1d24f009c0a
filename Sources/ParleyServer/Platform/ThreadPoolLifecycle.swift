import NIOPosix
import Vapor

/// Shuts a thread pool of the application's own down with the application.
struct ThreadPoolLifecycle: LifecycleHandler {
    let pool: NIOThreadPool

    func shutdownAsync(_ application: Application) async {
        try? await pool.shutdownGracefully()
    }
}

/// Closes the write gate's SQLite connection, then its checkpointer, with the application.
struct DirectSQLiteLifecycle: LifecycleHandler {
    let writer: DirectSQLiteConnection
    let checkpointer: WALCheckpointer

    func shutdownAsync(_ application: Application) async {
        writer.close()
        await checkpointer.close()
    }
}
