import Foundation

/// Where mail goes: an SMTP server in production, a recorder in tests.
protocol MailTransport: Sendable {
    func send(_ message: String, from sender: String, to recipients: [String]) async throws
}

extension SMTPClient: MailTransport {}
