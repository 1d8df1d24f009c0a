import Foundation
import Testing
import VaporTesting
@testable import ParleyServer

/// Walks every chat endpoint as each kind of caller and checks the status each one gets.
/// A caller who may not see a conversation gets 404, never 403. Site administrators get no
/// special access to conversations they are not in: a private conversation stays private.
@Suite("Authorization walk")
struct AuthorizationTests {
    enum Role: CaseIterable { case anonymous, stranger, member, admin, siteAdmin }

    struct World {
        var owner: TestUser
        var member: TestUser
        var admin: TestUser
        var extra: TestUser
        var stranger: TestUser
        var siteAdmin: TestUser

        func token(_ role: Role) -> String? {
            switch role {
            case .anonymous: nil
            case .stranger: stranger.token
            case .member: member.token
            case .admin: admin.token
            case .siteAdmin: siteAdmin.token
            }
        }
    }

    struct Endpoint: CustomTestStringConvertible, Sendable {
        var method: HTTPMethod
        var path: @Sendable (_ conversation: String, _ world: World) -> String
        var body: (@Sendable (_ world: World) -> String)?
        /// anonymous, stranger, member, conversation admin, site admin
        var expected: [UInt]
        var name: String
        var testDescription: String { name }

        init(_ method: HTTPMethod, _ name: String, _ expected: [UInt],
             path: @escaping @Sendable (String, World) -> String, body: (@Sendable (World) -> String)? = nil) {
            self.method = method
            self.name = "\(method.rawValue) \(name)"
            self.expected = expected
            self.path = path
            self.body = body
        }
    }

    static let endpoints: [Endpoint] = [
        Endpoint(.GET, "/v1/me", [401, 200, 200, 200, 200]) { _, _ in "v1/me" },
        Endpoint(.GET, "/v1/conversations", [401, 200, 200, 200, 200]) { _, _ in "v1/conversations" },
        Endpoint(.POST, "/v1/conversations", [401, 201, 201, 201, 201], path: { _, _ in "v1/conversations" },
                 body: { _ in #"{"kind":"group","title":"new"}"# }),
        Endpoint(.GET, "/v1/channels", [401, 200, 200, 200, 200]) { _, _ in "v1/channels" },
        Endpoint(.GET, "/v1/users", [401, 200, 200, 200, 200]) { _, _ in "v1/users?q=o" },
        Endpoint(.GET, "/v1/users/{id}", [401, 200, 200, 200, 200]) { _, world in "v1/users/\(world.owner.id)" },
        Endpoint(.GET, "/v1/search/messages", [401, 200, 200, 200, 200]) { _, _ in "v1/search/messages?q=hello" },
        Endpoint(.GET, "/v1/conversations/{id}", [401, 404, 200, 200, 404]) { c, _ in "v1/conversations/\(c)" },
        Endpoint(.PATCH, "/v1/conversations/{id}", [401, 404, 403, 200, 404], path: { c, _ in "v1/conversations/\(c)" },
                 body: { _ in #"{"topic":"new topic"}"# }),
        Endpoint(.DELETE, "/v1/conversations/{id}", [401, 404, 403, 403, 404]) { c, _ in "v1/conversations/\(c)" },
        Endpoint(.POST, "/v1/conversations/{id}/join", [401, 404, 200, 200, 404]) { c, _ in "v1/conversations/\(c)/join" },
        Endpoint(.POST, "/v1/conversations/{id}/leave", [401, 404, 204, 204, 404]) { c, _ in "v1/conversations/\(c)/leave" },
        Endpoint(.PUT, "/v1/conversations/{id}/read", [401, 404, 200, 200, 404], path: { c, _ in "v1/conversations/\(c)/read" },
                 body: { _ in #"{"seq":1}"# }),
        Endpoint(.GET, "/v1/conversations/{id}/members", [401, 404, 200, 200, 404]) { c, _ in "v1/conversations/\(c)/members" },
        Endpoint(.POST, "/v1/conversations/{id}/members", [401, 404, 403, 200, 404],
                 path: { c, _ in "v1/conversations/\(c)/members" }, body: { world in #"{"user_id":"\#(world.member.id)"}"# }),
        Endpoint(.PATCH, "/v1/conversations/{id}/members/{user}", [401, 404, 403, 200, 404],
                 path: { c, world in "v1/conversations/\(c)/members/\(world.extra.id)" }, body: { _ in #"{"role":"member"}"# }),
        Endpoint(.DELETE, "/v1/conversations/{id}/members/{user}", [401, 404, 403, 204, 404]) { c, world in
            "v1/conversations/\(c)/members/\(world.extra.id)"
        },
        Endpoint(.GET, "/v1/conversations/{id}/messages", [401, 404, 200, 200, 404]) { c, _ in "v1/conversations/\(c)/messages" },
        Endpoint(.POST, "/v1/conversations/{id}/messages", [401, 404, 201, 201, 404],
                 path: { c, _ in "v1/conversations/\(c)/messages" }, body: { _ in #"{"body":"hi"}"# }),
        Endpoint(.GET, "/v1/conversations/{id}/messages/{seq}", [401, 404, 200, 200, 404]) { c, _ in "v1/conversations/\(c)/messages/1" },
        Endpoint(.PUT, "/v1/conversations/{id}/messages/{seq}", [401, 404, 403, 403, 404],
                 path: { c, _ in "v1/conversations/\(c)/messages/1" }, body: { _ in #"{"body":"edited","reply_to":null}"# }),
        Endpoint(.PATCH, "/v1/conversations/{id}/messages/{seq}", [401, 404, 403, 403, 404],
                 path: { c, _ in "v1/conversations/\(c)/messages/1" }, body: { _ in #"{"body":"edited"}"# }),
        Endpoint(.DELETE, "/v1/conversations/{id}/messages/{seq}", [401, 404, 403, 204, 404]) { c, _ in "v1/conversations/\(c)/messages/1" },
        Endpoint(.GET, "/v1/conversations/{id}/messages/{seq}/replies", [401, 404, 200, 200, 404]) { c, _ in
            "v1/conversations/\(c)/messages/1/replies"
        },
        Endpoint(.PUT, "/v1/conversations/{id}/messages/{seq}/reactions/{emoji}", [401, 404, 201, 201, 404]) { c, _ in
            "v1/conversations/\(c)/messages/1/reactions/:tada:"
        },
        Endpoint(.DELETE, "/v1/conversations/{id}/messages/{seq}/reactions/{emoji}", [401, 404, 204, 204, 404]) { c, _ in
            "v1/conversations/\(c)/messages/1/reactions/:tada:"
        },
    ]

    @Test("every chat endpoint answers each kind of caller as it should, on a private group", arguments: endpoints)
    func privateGroup(endpoint: Endpoint) async throws {
        try await withParley { app, _ in
            let world = try await Self.world(app)
            for (index, role) in Role.allCases.enumerated() {
                // A fresh conversation per caller, so one caller's change cannot decide another's answer.
                let conversation = try await app.conversation(world.owner, title: "Private", members: [world.member, world.admin, world.extra])
                try await app.send(.PATCH, "v1/conversations/\(conversation)/members/\(world.admin.id)", json: #"{"role":"admin"}"#, token: world.owner.token)
                try await app.post("hello", in: conversation, by: world.owner)
                let response = try await app.send(endpoint.method, endpoint.path(conversation, world),
                                                  json: endpoint.body?(world), token: world.token(role))
                #expect(response.status.code == endpoint.expected[index], "\(endpoint.name) as \(role): \(response.body)")
                if response.status.code >= 400 { expectProblem(response, response.status) }
            }
        }
    }

    @Test("anyone signed in may read and join a public channel, but only members write")
    func publicChannel() async throws {
        try await withParley { app, _ in
            let world = try await Self.world(app)
            let channel = try await app.conversation(world.owner, kind: "channel", title: "lobby", visibility: "public")
            try await app.post("hello", in: channel, by: world.owner)
            let stranger = world.stranger.token
            #expect(try await app.send(.GET, "v1/conversations/\(channel)", token: stranger).status == .ok)
            #expect(try await app.send(.GET, "v1/conversations/\(channel)/messages", token: stranger).status == .ok)
            #expect(try await app.send(.GET, "v1/conversations/\(channel)/members", token: stranger).status == .ok)
            expectProblem(try await app.post("hi", in: channel, by: world.stranger), .forbidden)
            expectProblem(try await app.send(.PUT, "v1/conversations/\(channel)/messages/1/reactions/:tada:", token: stranger), .forbidden)
            expectProblem(try await app.send(.PUT, "v1/conversations/\(channel)/read", json: #"{"seq":1}"#, token: stranger), .forbidden)
            expectProblem(try await app.send(.PATCH, "v1/conversations/\(channel)", json: #"{"topic":"x"}"#, token: stranger), .forbidden)
            expectProblem(try await app.send(.GET, "v1/conversations/\(channel)"), .unauthorized)
            #expect(try await app.send(.POST, "v1/conversations/\(channel)/join", token: stranger).status == .created)
            #expect(try await app.post("hi", in: channel, by: world.stranger).status == .created)
        }
    }

    static func world(_ app: Application) async throws -> World {
        let owner = try await app.user("owner"), member = try await app.user("member"), admin = try await app.user("admin")
        let extra = try await app.user("extra"), stranger = try await app.user("stranger")
        let accounts = try #require(app.storage[AccountsKey.self])
        _ = try await accounts.service(app.db).createUser(handle: "root", displayName: nil, email: nil, password: "a long admin password", role: .admin)
        let login = try await app.send(.POST, "v1/auth/login", json: #"{"handle":"root","password":"a long admin password"}"#)
        let root = TestUser(id: try #require((login["user"] as? [String: Any])?["id"] as? String), handle: "root",
                            token: try #require(login.string("access_token")))
        return World(owner: owner, member: member, admin: admin, extra: extra, stranger: stranger, siteAdmin: root)
    }
}
