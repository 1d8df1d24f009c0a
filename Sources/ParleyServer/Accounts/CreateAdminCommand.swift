import Fluent
import Vapor

/// `parley create-admin --handle NAME [--display-name NAME] [--email ADDRESS]`
///
/// Reads the password from standard input (a hidden prompt on a terminal), never from the
/// command line, where it would land in shell history and the process list.
struct CreateAdminCommand: AsyncCommand {
    struct Signature: CommandSignature {
        @Option(name: "handle", help: "The administrator's handle (3-32 of a-z 0-9 _ . -).")
        var handle: String?
        @Option(name: "display-name", help: "The name shown to others (defaults to the handle).")
        var displayName: String?
        @Option(name: "email", help: "An optional email address.")
        var email: String?
    }

    var help: String { "Creates an administrator; the password is read from standard input." }

    func run(using context: CommandContext, signature: Signature) async throws {
        guard let accounts = context.application.storage[AccountsKey.self] else { return }
        let password: String?
        if isatty(STDIN_FILENO) == 1 {
            context.console.output("Password: ", newLine: false)
            password = context.console.input(isSecure: true)
        } else {
            password = readLine(strippingNewline: true)
        }
        do {
            let (user, _) = try await accounts.service(context.application.db).createUser(
                handle: signature.handle, displayName: signature.displayName, email: signature.email,
                password: password, role: .admin)
            context.console.success("Created administrator @\(user.handle) (\(try user.requireID().wire)).")
        } catch let problem as ProblemError {
            let fields = (problem.errors ?? []).map { "\($0.field) \($0.message)" }
            context.console.error("Could not create the administrator: " + (fields.isEmpty ? problem.detail ?? problem.title : fields.joined(separator: "; ")))
            throw ExitCode(1)
        }
    }
}
