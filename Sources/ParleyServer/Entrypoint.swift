import Foundation
import Logging
import NIOCore
import NIOPosix
import Vapor

/// The `parley` executable: settings from the environment, JSON logs, then Vapor's command
/// line (`serve`, `migrate`, `create-admin`, `routes`).
public enum ParleyMain {
    public static func run() async {
        // Swift concurrency's jobs run on NIO's event loops instead of separate dispatch
        // threads: far fewer thread hops and wake-ups per request (Vapor's template does the same).
        let onEventLoops = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        let settings: Settings
        do {
            settings = try Settings.load(from: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            exit(1)
        }
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: settings.logLevel) }

        let environment = Environment(name: settings.mode.rawValue, arguments: CommandLine.arguments)
        let app: Application
        do {
            app = try await Application.make(environment)
        } catch {
            FileHandle.standardError.write(Data("parley: \(error)\n".utf8))
            exit(1)
        }
        app.logger.logLevel = settings.logLevel
        app.logger.debug("Swift concurrency on the event loops", metadata: ["installed": .stringConvertible(onEventLoops)])
        var failed = false
        do {
            try await configure(app, settings: settings)
            if isServe(CommandLine.arguments) {
                try await prepareToServe(app)
            } else {
                try await DatabaseSetup.prepareSQLite(app)
            }
            try await app.execute()
        } catch let error as SettingsError {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            app.logger.critical("refusing to start", metadata: ["problems": .array(error.problems.map { .string($0) })])
            failed = true
        } catch is ExitCode {
            // The command has already said what went wrong.
            failed = true
        } catch {
            app.logger.report(error: error)
            failed = true
        }
        try? await app.asyncShutdown()
        if failed { exit(1) }
    }

    /// Vapor runs `serve` when no command is named.
    static func isServe(_ arguments: [String]) -> Bool {
        guard let first = arguments.dropFirst().first, !first.hasPrefix("-") else { return true }
        return first == "serve"
    }
}
