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
        // threads: far fewer thread hops and wake-ups per request. As the generic executor,
        // not NIO's own way (see ConcurrencyOnEventLoops).
        let onEventLoops = ConcurrencyOnEventLoops.install()
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
            switch preparation(for: CommandLine.arguments) {
            case .serve:
                try await prepareToServe(app)
            case .database:
                try await prepareDatabase(app)
            case .migrate:
                try await DatabaseSetup.prepareSQLite(app)
                let confirmed = CommandLine.arguments.contains("--yes") || CommandLine.arguments.contains("-y")
                if !confirmed, isatty(STDIN_FILENO) == 0 {
                    // Vapor would ask for a confirmation on a terminal that is not there and crash.
                    FileHandle.standardError.write(Data("parley migrate: there is no terminal to confirm on; pass --yes to apply without asking\n".utf8))
                    throw ExitCode(1)
                }
            case .none:
                break
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

    /// What a command needs before it runs.
    enum Preparation: Equatable {
        /// Migrations (or a refusal in production), then the serving node's background work.
        case serve
        /// Migrations (or a refusal in production), for commands that read and write data.
        case database
        /// The database's connection settings only: the command is the migration.
        case migrate
        /// Nothing: help and `routes` touch no database.
        case none
    }

    static func preparation(for arguments: [String]) -> Preparation {
        let rest = arguments.dropFirst()
        if rest.contains("--help") || rest.contains("-h") { return .none }
        // Vapor runs `serve` when no command is named.
        guard let command = rest.first, !command.hasPrefix("-") else { return .serve }
        switch command {
        case "serve": return .serve
        case "create-admin", "seed": return .database
        case "migrate": return .migrate
        default: return .none
        }
    }

    static func isServe(_ arguments: [String]) -> Bool {
        preparation(for: arguments) == .serve
    }
}
