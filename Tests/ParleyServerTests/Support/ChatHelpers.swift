import Foundation
import Testing
import VaporTesting
@testable import ParleyServer

/// A signed-in test user.
struct TestUser {
    let id: String
    let handle: String
    let token: String
}

extension Application {
    func user(_ handle: String) async throws -> TestUser {
        let response = try await register(handle)
        let user = try #require(response["user"] as? [String: Any])
        return TestUser(id: try #require(user["id"] as? String), handle: handle, token: try #require(response.string("access_token")))
    }

    /// Creates a conversation and returns its id.
    func conversation(_ owner: TestUser, kind: String = "group", title: String? = "Team", visibility: String? = nil,
                      members: [TestUser] = []) async throws -> String {
        var fields = [#""kind":"\#(kind)""#, #""member_ids":[\#(members.map { "\"\($0.id)\"" }.joined(separator: ","))]"#]
        if let title { fields.append(#""title":"\#(title)""#) }
        if let visibility { fields.append(#""visibility":"\#(visibility)""#) }
        let response = try await send(.POST, "v1/conversations", json: "{" + fields.joined(separator: ",") + "}", token: owner.token)
        #expect(response.status == .created || response.status == .ok, "\(response.body)")
        return try #require(response.string("id"))
    }

    @discardableResult
    func post(_ text: String, in conversation: String, by user: TestUser, key: String? = nil, replyTo: String? = nil) async throws -> JSONResponse {
        var headers = HTTPHeaders()
        if let key { headers.add(name: "Idempotency-Key", value: key) }
        var fields = [#""body":\#(jsonString(text))"#]
        if let replyTo { fields.append(#""reply_to":"\#(replyTo)""#) }
        return try await send(.POST, "v1/conversations/\(conversation)/messages", json: "{" + fields.joined(separator: ",") + "}",
                              token: user.token, headers: headers)
    }
}

func jsonString(_ text: String) -> String {
    (try? JSONEncoder().encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
}

extension JSONResponse {
    var items: [[String: Any]] { object["items"] as? [[String: Any]] ?? [] }
}

extension MemoryLogSink {
    /// The SQL statements Fluent and SQLKit logged (at debug), one per query sent.
    var sqlStatements: [String] {
        contents.compactMap { line -> String? in
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                  object["message"] as? String == "Executing query" else { return nil }
            return object["sql"] as? String
        }
    }
}
