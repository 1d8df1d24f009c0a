import Fluent
import Foundation
import NIOConcurrencyHelpers
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

/// E-mail digests: scheduled once per person and period from new notifications, sent with
/// what is still unread and unreported, never twice, and not to people who turned them off.
/// (The SMTP client itself talks to a real SMTP server in scripts/e2e.)
@Suite("E-mail digests")
struct EmailDigestTests {
    /// Keeps what would have been mailed.
    final class Recorder: MailTransport {
        let sent = NIOLockedValueBox<[(message: String, from: String, to: [String])]>([])
        func send(_ message: String, from sender: String, to recipients: [String]) async throws {
            sent.withLockedValue { $0.append((message, sender, recipients)) }
        }
    }

    static func settings(_ settings: inout Settings) {
        settings.email = .init(smtpURL: "smtp://127.0.0.1:1", from: "parley@chat.example.com", digestDelay: .seconds(600))
        settings.publicURL = "https://chat.example.com"
    }

    /// Notifications from what was committed, then digest jobs from those.
    static func schedule(_ app: Application) async throws {
        try await NotificationTests.settle(app)
        let follower = try #require(app.storage[EmailFollowerKey.self])
        while try await follower.followOnce() {}
    }

    static func digestJobs(_ app: Application) async throws -> [Job] {
        try await Job.query(on: app.db).filter(\Job.$queue == EmailDigests.queue).all()
    }

    /// The text of a rendered message's base64 body.
    static func body(_ message: String) throws -> String {
        let parts = message.components(separatedBy: "\r\n\r\n")
        let data = try #require(Data(base64Encoded: parts.dropFirst().joined().replacingOccurrences(of: "\r\n", with: "")))
        return String(decoding: data, as: UTF8.self)
    }

    @Test("two mentions in one period make one digest, sent when it ends, listing both; nothing is sent twice")
    func oneDigestPerPeriod() async throws {
        try await withParley(Self.settings) { app, context in
            let ann = try await app.user("ann")
            let ben = try #require(try await app.register("ben", email: "ben@example.com")["user"] as? [String: Any])
            let benID = try #require(ben["id"] as? String)
            let benUser = TestUser(id: benID, handle: "ben", token: "")
            let group = try await app.conversation(ann, title: "Launch", members: [benUser])
            try await app.post("@ben can you check the copy?", in: group, by: ann)
            context.clock.advance(by: 30)
            try await app.post("@ben and the date", in: group, by: ann)
            try await Self.schedule(app)
            let jobs = try await Self.digestJobs(app)
            #expect(jobs.count == 1, "one job per person and period")
            let runAt = try #require(jobs.first?.runAt)
            #expect(runAt > context.clock.now && runAt <= context.clock.now.addingTimeInterval(600 - 30))

            // Not due before its period ends.
            #expect(try await app.jobs.queue.claim(queues: [EmailDigests.queue], limit: 5, on: app.db).isEmpty)
            context.clock.advance(by: 601)
            let claimed = try await app.jobs.queue.claim(queues: [EmailDigests.queue], limit: 5, on: app.db)
            let recorder = Recorder()
            let digests = EmailDigests(transport: recorder, from: "parley@chat.example.com", baseURL: "https://chat.example.com",
                                       writes: try #require(app.storage[WriteGateKey.self]), clock: context.clock.appClock)
            try await digests.handle(try #require(claimed.first), on: app.db)
            let sent = recorder.sent.withLockedValue { $0 }
            #expect(sent.count == 1)
            #expect(sent.first?.to == ["ben@example.com"])
            #expect(sent.first?.from == "parley@chat.example.com")
            let message = try #require(sent.first?.message)
            #expect(message.contains("\r\nSubject: 2 things need you on Parley\r\n"))
            #expect(message.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"))
            let text = try Self.body(message)
            #expect(text.contains("@ann mentioned you in Launch") || text.contains("ann mentioned you in Launch"))
            #expect(text.contains("\"@ben can you check the copy?\""))
            #expect(text.contains("\"@ben and the date\""))
            #expect(text.contains("https://chat.example.com/#/c/\(group)/m/1"))
            #expect(text.range(of: "copy?")!.lowerBound < text.range(of: "the date")!.lowerBound, "oldest first")

            // Run again (a retry, or the next period with nothing new): nothing more is sent.
            try await digests.handle(try #require(claimed.first), on: app.db)
            #expect(recorder.sent.withLockedValue { $0.count } == 1)
        }
    }

    @Test("what was read before the digest is due is not mailed; people without an address or who turned digests off get none")
    func readOrOptedOut() async throws {
        try await withParley(Self.settings) { app, context in
            let ann = try await app.user("ann"), noMail = try await app.user("cleo")
            let ben = try #require(try await app.register("ben", email: "ben@example.com")["user"] as? [String: Any])
            let benToken = try #require(try await app.send(.POST, "v1/auth/login", json: #"{"handle":"ben","password":"correct horse battery"}"#)
                .string("access_token"))
            let benUser = TestUser(id: try #require(ben["id"] as? String), handle: "ben", token: benToken)
            let group = try await app.conversation(ann, members: [benUser, noMail])
            try await app.post("@ben @cleo look", in: group, by: ann)
            try await Self.schedule(app)
            #expect(try await Self.digestJobs(app).count == 1, "cleo has no address")

            // Ben reads the conversation before the period ends: the digest finds nothing to send.
            let read = try await app.send(.PUT, "v1/conversations/\(group)/read", json: #"{"seq":1}"#, token: benToken)
            #expect(read.status == .ok || read.status == .noContent, "\(read.body)")
            try await NotificationTests.settle(app)
            let recorder = Recorder()
            let digests = EmailDigests(transport: recorder, from: "p@example.com", baseURL: "https://chat.example.com",
                                       writes: try #require(app.storage[WriteGateKey.self]), clock: context.clock.appClock)
            #expect(try await digests.digest(for: try #require(UUID(uuidString: benUser.id)), on: app.db) == nil)

            // Turned off: no job is scheduled at all.
            let off = try await app.send(.PUT, "v1/notifications/email", json: #"{"enabled":false}"#, token: benToken)
            #expect(off["enabled"] as? Bool == false)
            #expect(off["available"] as? Bool == true)
            #expect(off.string("address") == "ben@example.com")
            expectProblem(try await app.send(.PUT, "v1/notifications/email", json: #"{"enabled":false,"x":1}"#, token: benToken),
                          .unprocessableEntity)
            let before = try await Self.digestJobs(app).count
            context.clock.advance(by: 3600)
            try await app.post("@ben again", in: group, by: ann)
            try await Self.schedule(app)
            #expect(try await Self.digestJobs(app).count == before)
        }
    }

    @Test("the message: headers safe and encoded, dot-stuffing, and an SMTP URL's password never echoed in an error")
    func composition() throws {
        let mail = DigestMail(from: "parley@example.com", to: "zoe@example.com", recipientName: "Zoë \"Z\" <x>",
                              items: [.init(title: "Ana mentioned you", excerpt: "héllo\nworld", link: "https://c.example.com/#/c/1/m/2",
                                            at: Date(timeIntervalSince1970: 1_765_000_000))],
                              baseURL: "https://c.example.com", date: Date(timeIntervalSince1970: 1_765_000_000), messageID: "m1@parley")
        let rendered = mail.rendered
        #expect(rendered.contains("\r\nSubject: Ana mentioned you on Parley\r\n"))
        #expect(rendered.contains("\r\nTo: =?utf-8?B?\(Data("Zoë \"Z\" <x>".utf8).base64EncodedString())?= <zoe@example.com>\r\n"))
        #expect(rendered.contains("\r\nDate: Sat, 06 Dec 2025 05:46:40 +0000\r\n"))
        #expect(!rendered.split(separator: "\r\n").contains { $0.count > 998 })
        #expect(try Self.body(rendered).contains("héllo"))
        #expect(DigestMail.encodedWord("Bad\r\nBcc: evil@example.com") == "\"Bad  Bcc: evil@example.com\"")

        #expect(SMTPClient.dotStuffed("a\r\n.b\r\n..c\n") == "a\r\n..b\r\n...c\r\n")
        let server = try #require(SMTPClient.Server.parse("smtp://mailer:s%40cret@mail.example.com:587?tls=required"))
        #expect(server == .init(host: "mail.example.com", port: 587, security: .startTLS, username: "mailer", password: "s@cret"))
        #expect(SMTPClient.Server.parse("smtps://mail.example.com")?.port == 465)
        #expect(SMTPClient.Server.parse("http://mail.example.com") == nil)
        do {
            _ = try Settings.load(from: ["PARLEY_SMTP_URL": "smtp://u:hunter2@mail.example.com?tls=maybe", "PARLEY_EMAIL_FROM": "p@example.com"])
            Issue.record("an invalid URL was accepted")
        } catch let error as SettingsError {
            #expect(!String(describing: error).contains("hunter2"))
        }
        #expect(throws: SettingsError.self) { try Settings.load(from: ["PARLEY_SMTP_URL": "smtp://mail.example.com"]) }
        #expect(try Settings.load(from: ["PARLEY_SMTP_URL": "smtp://mail.example.com", "PARLEY_EMAIL_FROM": "p@example.com",
                                         "PARLEY_EMAIL_DIGEST_DELAY": "60"]).email?.digestDelay == .seconds(60))
    }
}
