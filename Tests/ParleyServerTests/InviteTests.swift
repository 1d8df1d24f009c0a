import Foundation
import SQLKit
import Testing
import VaporTesting
@testable import ParleyServer

/// Invite links: to a conversation or to the site, with expiry, a use limit and revocation;
/// registration that needs one.
@Suite("Invites")
struct InviteTests {
    static func register(_ app: Application, _ handle: String, invite: String?) async throws -> JSONResponse {
        var fields = [#""handle":"\#(handle)""#, #""password":"correct horse battery""#]
        if let invite { fields.append(#""invite":"\#(invite)""#) }
        return try await app.send(.POST, "v1/auth/register", json: "{" + fields.joined(separator: ",") + "}")
    }

    @Test("a conversation's invite link lets newcomers sign up into it, up to its limit; then it is refused and no account is made")
    func conversationInvite() async throws {
        try await withParley { app, _ in
            let owner = try await app.user("host")
            let group = try await app.conversation(owner, kind: "group", title: "Book club")
            let made = try await app.send(.POST, "v1/invites", json: #"{"conversation_id":"\#(group)","max_uses":2,"expires_in":3600}"#,
                                          token: owner.token)
            #expect(made.status == .created, "\(made.body)")
            let token = try #require(made.string("token"))
            #expect(made["uses"] as? Int == 0)

            // Anyone holding the link sees where it leads, without signing in.
            let shown = try await app.send(.GET, "v1/join/\(token)")
            #expect(shown.status == .ok)
            #expect(shown.string("conversation_title") == "Book club")
            #expect(shown["token"] == nil, "the token is never shown again")

            for handle in ["reader1", "reader2"] {
                let registered = try await Self.register(app, handle, invite: token)
                #expect(registered.status == .created, "\(registered.body)")
                let access = try #require(registered.string("access_token"))
                let conversation = try await app.send(.GET, "v1/conversations/\(group)", token: access)
                #expect(conversation.status == .ok, "the invite made them a member")
            }
            let third = try await Self.register(app, "reader3", invite: token)
            expectProblem(third, .unprocessableEntity)
            #expect(third.fieldErrors == ["invite": "invalid"])
            #expect(try await app.send(.POST, "v1/auth/login", json: #"{"handle":"reader3","password":"correct horse battery"}"#).status
                    == .unauthorized, "no account was made")
            expectProblem(try await app.send(.GET, "v1/join/\(token)"), .notFound)
            let members = try await app.send(.GET, "v1/conversations/\(group)/members", token: owner.token)
            #expect(members.items.count == 3)
        }
    }

    @Test("an expired or revoked link is not found; a signed-in person joins with a live one")
    func expiryRevocationAndJoining() async throws {
        try await withParley { app, context in
            let owner = try await app.user("keeper"), guest = try await app.user("guest")
            let channel = try await app.conversation(owner, kind: "channel", title: "secret", visibility: "private")
            let short = try #require(try await app.send(.POST, "v1/invites", json: #"{"conversation_id":"\#(channel)","expires_in":60}"#,
                                                        token: owner.token).string("token"))
            let revocable = try await app.send(.POST, "v1/invites", json: #"{"conversation_id":"\#(channel)"}"#, token: owner.token)
            let live = try #require(try await app.send(.POST, "v1/invites", json: #"{"conversation_id":"\#(channel)"}"#,
                                                       token: owner.token).string("token"))
            context.clock.advance(by: 61)
            expectProblem(try await app.send(.GET, "v1/join/\(short)"), .notFound)
            expectProblem(try await app.send(.POST, "v1/join/\(short)", token: guest.token), .notFound)
            #expect(try await app.send(.DELETE, "v1/invites/\(try #require(revocable.string("id")))", token: owner.token).status == .noContent)
            expectProblem(try await app.send(.GET, "v1/join/\(try #require(revocable.string("token")))"), .notFound)
            expectProblem(try await app.send(.GET, "v1/conversations/\(channel)", token: guest.token), .notFound)

            let joined = try await app.send(.POST, "v1/join/\(live)", token: guest.token)
            #expect(joined.status == .ok)
            #expect(joined.string("conversation_id") == channel)
            #expect(try await app.send(.GET, "v1/conversations/\(channel)", token: guest.token).status == .ok)
            let listed = try await app.send(.GET, "v1/invites", token: owner.token)
            #expect(listed.items.count == 3)
            #expect(listed.items.allSatisfy { $0["token"] == nil })
        }
    }

    @Test("only a conversation's owner and admins invite to it, only site administrators to the site, and not to a direct conversation")
    func permissions() async throws {
        try await withParley { app, _ in
            let owner = try await app.user("owner1"), member = try await app.user("member1")
            let group = try await app.conversation(owner, kind: "group", title: "Team", members: [member])
            expectProblem(try await app.send(.POST, "v1/invites", json: #"{"conversation_id":"\#(group)"}"#, token: member.token), .forbidden)
            expectProblem(try await app.send(.POST, "v1/invites", json: #"{}"#, token: owner.token), .forbidden)
            let direct = try await app.conversation(owner, kind: "direct", title: nil, members: [member])
            expectProblem(try await app.send(.POST, "v1/invites", json: #"{"conversation_id":"\#(direct)"}"#, token: owner.token), .conflict)
            let bad = try await app.send(.POST, "v1/invites", json: #"{"conversation_id":"\#(group)","max_uses":0,"expires_in":5,"x":1}"#,
                                         token: owner.token)
            #expect(bad.fieldErrors == ["x": "unknown_field"])
            let range = try await app.send(.POST, "v1/invites", json: #"{"conversation_id":"\#(group)","max_uses":0,"expires_in":5}"#,
                                           token: owner.token)
            #expect(range.fieldErrors == ["max_uses": "out_of_range", "expires_in": "out_of_range"])
        }
    }

    @Test("with PARLEY_REGISTRATION=invite, signing up needs a usable invite; a site invite from an administrator is one")
    func registrationByInvite() async throws {
        try await withParley({ $0.registrationNeedsInvite = true }) { app, _ in
            let refused = try await Self.register(app, "drifter", invite: nil)
            expectProblem(refused, .unprocessableEntity)
            #expect(refused.fieldErrors == ["invite": "required"])
            expectProblem(try await Self.register(app, "drifter", invite: "made-up"), .unprocessableEntity)

            // The first administrator comes from the command line (`parley create-admin`), which needs no invite.
            let accounts = try #require(app.storage[AccountsKey.self])
            _ = try await accounts.service(app.db).createUser(handle: "siteadmin", displayName: nil, email: nil,
                                                             password: "correct horse battery", role: .admin)
            let login = try await app.send(.POST, "v1/auth/login", json: #"{"handle":"siteadmin","password":"correct horse battery"}"#)
            let token = try #require(try await app.send(.POST, "v1/invites", json: #"{"max_uses":1}"#,
                                                        token: try #require(login.string("access_token"))).string("token"))
            #expect(try await Self.register(app, "welcome", invite: token).status == .created)
            expectProblem(try await Self.register(app, "latecomer", invite: token), .unprocessableEntity)
        }
    }
}
