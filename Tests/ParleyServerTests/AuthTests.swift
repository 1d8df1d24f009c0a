import Crypto
import Foundation
import Testing
import VaporTesting
@testable import ParleyServer

@Suite("Accounts and tokens")
struct AuthTests {
    @Test("a digest's hex is the published one (SHA-256 of \"abc\", FIPS 180-2) and of the empty string")
    func digestHex() {
        #expect(SHA256.hash(data: Data("abc".utf8)).hexString == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hash(data: Data()).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("register returns the user and a token pair")
    func register() async throws {
        try await withParley { app, _ in
            let response = try await app.send(.POST, "v1/auth/register",
                                              json: #"{"handle":"Alice","display_name":"Alice A.","email":"Alice@Example.com","password":"correct horse battery"}"#)
            #expect(response.status == .created)
            #expect(response.string("token_type") == "Bearer")
            #expect(response["expires_in"] as? Int == 900)
            #expect((response.string("access_token")?.split(separator: ".").count) == 3)
            #expect((response.string("refresh_token")?.count ?? 0) >= 43)
            let user = try #require(response["user"] as? [String: Any])
            #expect(user["handle"] as? String == "alice")
            #expect(user["display_name"] as? String == "Alice A.")
            #expect(user["email"] as? String == "alice@example.com")
            #expect(user["role"] as? String == "user")
            #expect(user["kind"] as? String == "human")
            #expect(user["password_hash"] == nil)
        }
    }

    @Test("handles are unique case-insensitively, and so are emails")
    func uniqueHandle() async throws {
        try await withParley { app, _ in
            try await app.register("bob", email: "bob@example.com")
            let again = try await app.send(.POST, "v1/auth/register", json: #"{"handle":"BOB","email":"BOB@example.com","password":"another fine password"}"#)
            expectProblem(again, .conflict)
            #expect(again.fieldErrors == ["handle": "taken", "email": "taken"])
        }
    }

    @Test("passwords: 10 characters, not the handle, not a common one", arguments: [
        ("short", "too_short"), ("carol.smith", "same_as_handle"), ("Password123", "too_common"), ("1234567890", "too_common"),
        (String(repeating: "é", count: 40), "too_long"),
    ])
    func passwordPolicy(password: String, code: String) async throws {
        try await withParley { app, _ in
            let response = try await app.send(.POST, "v1/auth/register", json: #"{"handle":"carol.smith","password":"\#(password)"}"#)
            expectProblem(response, .unprocessableEntity)
            #expect(response.fieldErrors["password"] == code)
        }
    }

    @Test("handles outside 3-32 of [a-z0-9_.-] are refused", arguments: ["ab", String(repeating: "x", count: 33), "has space", "émile", "semi;colon"])
    func handleRules(handle: String) async throws {
        try await withParley { app, _ in
            let response = try await app.send(.POST, "v1/auth/register", json: #"{"handle":"\#(handle)","password":"correct horse battery"}"#)
            expectProblem(response, .unprocessableEntity)
            #expect(response.fieldErrors["handle"] != nil)
        }
    }

    @Test("login by handle or email; a wrong password is 401")
    func login() async throws {
        try await withParley { app, _ in
            try await app.register("dave", email: "dave@example.com")
            let byHandle = try await app.send(.POST, "v1/auth/login", json: #"{"handle":"DAVE","password":"correct horse battery"}"#)
            #expect(byHandle.status == .ok)
            #expect(byHandle.string("access_token") != nil)
            let byEmail = try await app.send(.POST, "v1/auth/login", json: #"{"handle":"dave@example.com","password":"correct horse battery"}"#)
            #expect(byEmail.status == .ok)
            let wrong = try await app.send(.POST, "v1/auth/login", json: #"{"handle":"dave","password":"wrong horse battery"}"#)
            expectProblem(wrong, .unauthorized)
            let unknown = try await app.send(.POST, "v1/auth/login", json: #"{"handle":"nobody","password":"wrong horse battery"}"#)
            expectProblem(unknown, .unauthorized)
            #expect(wrong.string("detail") == unknown.string("detail"), "the answer must not reveal whether the handle exists")
        }
    }

    @Test("refresh rotates the pair; the old token then fails")
    func refreshRotates() async throws {
        try await withParley { app, _ in
            let first = try await app.register("erin")
            let refresh1 = try #require(first.string("refresh_token"))
            let second = try await app.send(.POST, "v1/auth/refresh", json: #"{"refresh_token":"\#(refresh1)"}"#)
            #expect(second.status == .ok)
            let refresh2 = try #require(second.string("refresh_token"))
            #expect(refresh2 != refresh1)
            let third = try await app.send(.POST, "v1/auth/refresh", json: #"{"refresh_token":"\#(refresh2)"}"#)
            #expect(third.status == .ok)
            // The first token, already exchanged, is refused.
            let old = try await app.send(.POST, "v1/auth/refresh", json: #"{"refresh_token":"\#(refresh1)"}"#)
            expectProblem(old, .unauthorized)
            #expect(old.string("type") == "/problems/refresh-token-reused")
        }
    }

    @Test("presenting a rotated refresh token revokes the whole family")
    func reuseRevokesFamily() async throws {
        try await withParley { app, _ in
            let first = try await app.register("frank")
            let stolen = try #require(first.string("refresh_token"))
            let rotated = try await app.send(.POST, "v1/auth/refresh", json: #"{"refresh_token":"\#(stolen)"}"#)
            let current = try #require(rotated.string("refresh_token"))
            let currentAccess = try #require(rotated.string("access_token"))

            let reuse = try await app.send(.POST, "v1/auth/refresh", json: #"{"refresh_token":"\#(stolen)"}"#)
            expectProblem(reuse, .unauthorized)
            #expect(reuse.string("type") == "/problems/refresh-token-reused")

            // The legitimate holder's newer token and access token die with the family.
            expectProblem(try await app.send(.POST, "v1/auth/refresh", json: #"{"refresh_token":"\#(current)"}"#), .unauthorized)
            expectProblem(try await app.send(.GET, "v1/me", token: currentAccess), .unauthorized)
        }
    }

    @Test("refresh tokens are stored only as hashes")
    func refreshTokensHashed() async throws {
        try await withParley { app, _ in
            let refresh = try #require(try await app.register("gina").string("refresh_token"))
            let rows = try await RefreshToken.query(on: app.db).all()
            #expect(rows.count == 1)
            #expect(rows[0].tokenHash == SHA256.hash(data: Data(refresh.utf8)).hexString)
            #expect(rows.allSatisfy { !$0.tokenHash.contains(refresh) })
        }
    }

    @Test("an expired refresh token is 401")
    func expiredRefresh() async throws {
        try await withParley { app, context in
            let refresh = try #require(try await app.register("hank").string("refresh_token"))
            context.clock.advance(by: 31 * 24 * 3600)
            expectProblem(try await app.send(.POST, "v1/auth/refresh", json: #"{"refresh_token":"\#(refresh)"}"#), .unauthorized)
        }
    }

    @Test("logout revokes the family: access and refresh tokens stop working")
    func logout() async throws {
        try await withParley { app, _ in
            let tokens = try await app.register("ivan")
            let access = try #require(tokens.string("access_token"))
            let refresh = try #require(tokens.string("refresh_token"))
            #expect(try await app.send(.POST, "v1/auth/logout", token: access).status == .noContent)
            expectProblem(try await app.send(.GET, "v1/me", token: access), .unauthorized)
            expectProblem(try await app.send(.POST, "v1/auth/refresh", json: #"{"refresh_token":"\#(refresh)"}"#), .unauthorized)
        }
    }

    @Test("GET and PATCH /v1/me")
    func me() async throws {
        try await withParley { app, _ in
            let access = try #require(try await app.register("judy", email: "judy@example.com").string("access_token"))
            let me = try await app.send(.GET, "v1/me", token: access)
            #expect(me.status == .ok)
            #expect(me.string("handle") == "judy")

            let patched = try await app.send(.PATCH, "v1/me", json: #"{"display_name":"Judy J","bio":"hi","time_zone":"Europe/Paris","email":null}"#, token: access)
            #expect(patched.status == .ok, "\(patched.body)")
            #expect(patched.string("display_name") == "Judy J")
            #expect(patched["email"] == nil)
            let profile = try #require(patched["profile"] as? [String: Any])
            #expect(profile["bio"] as? String == "hi")
            #expect(profile["time_zone"] as? String == "Europe/Paris")

            let bad = try await app.send(.PATCH, "v1/me", json: #"{"display_name":"","time_zone":"Mars/Olympus"}"#, token: access)
            expectProblem(bad, .unprocessableEntity)
            #expect(bad.fieldErrors == ["display_name": "blank", "time_zone": "invalid"])
            // Nothing of a refused PATCH is applied.
            #expect(try await app.send(.GET, "v1/me", token: access).string("display_name") == "Judy J")
        }
    }

    @Test("changing the password ends the other sessions but not this one")
    func changePassword() async throws {
        try await withParley { app, _ in
            let phone = try await app.register("kate")
            let laptop = try await app.send(.POST, "v1/auth/login", json: #"{"handle":"kate","password":"correct horse battery"}"#)
            let laptopAccess = try #require(laptop.string("access_token"))
            let phoneAccess = try #require(phone.string("access_token"))

            let wrong = try await app.send(.PUT, "v1/me/password", json: #"{"current_password":"nope nope nope","new_password":"a whole new password"}"#, token: laptopAccess)
            expectProblem(wrong, .unprocessableEntity)
            #expect(wrong.fieldErrors == ["current_password": "incorrect"])

            let changed = try await app.send(.PUT, "v1/me/password", json: #"{"current_password":"correct horse battery","new_password":"a whole new password"}"#, token: laptopAccess)
            #expect(changed.status == .noContent)
            #expect(try await app.send(.GET, "v1/me", token: laptopAccess).status == .ok)
            expectProblem(try await app.send(.GET, "v1/me", token: phoneAccess), .unauthorized)
            expectProblem(try await app.send(.POST, "v1/auth/refresh", json: #"{"refresh_token":"\#(phone.string("refresh_token")!)"}"#), .unauthorized)
            #expect(try await app.send(.POST, "v1/auth/login", json: #"{"handle":"kate","password":"a whole new password"}"#).status == .ok)
        }
    }

    @Test("no credentials, a malformed header or a garbage token is 401")
    func unauthenticated() async throws {
        try await withParley { app, _ in
            expectProblem(try await app.send(.GET, "v1/me"), .unauthorized)
            expectProblem(try await app.send(.GET, "v1/me", headers: ["Authorization": "Basic Zm9vOmJhcg=="]), .unauthorized)
            expectProblem(try await app.send(.GET, "v1/me", token: "not.a.jwt"), .unauthorized)
        }
    }

    @Test("an access token expires after 15 minutes")
    func accessTokenExpires() async throws {
        try await withParley { app, context in
            let access = try #require(try await app.register("liam").string("access_token"))
            context.clock.advance(by: 14 * 60)
            #expect(try await app.send(.GET, "v1/me", token: access).status == .ok)
            context.clock.advance(by: 2 * 60)
            let expired = try await app.send(.GET, "v1/me", token: access)
            expectProblem(expired, .unauthorized)
            #expect(expired.string("type") == "/problems/token-expired")
        }
    }

    @Test("a verified token is answered from memory only as the same string and until it expires; the memory stays bounded")
    func verifiedTokens() async throws {
        let clock = TestClock()
        let keys = await TokenService.makeKeys(ServerKeys(secret: String(repeating: "k", count: 48)), algorithm: .hs256)
        let tokens = TokenService(keys: keys, algorithm: .hs256, csrfKey: SymmetricKey(size: .bits256),
                                  accessTokenLifetime: .seconds(900), clock: clock.appClock)
        let (userID, sessionID) = (UUID(), UUID())
        let token = try await tokens.issue(userID: userID, sessionID: sessionID).token
        #expect(try await tokens.verify(token) == (userID, sessionID))
        #expect(tokens.verified.count == 1)
        // Another signature on the same claims is checked, not taken from memory.
        let forged = token.dropLast(4) + "AAAA"
        await #expect(throws: TokenService.Failure.self) { try await tokens.verify(String(forged)) }
        #expect(try await tokens.verify(token) == (userID, sessionID))
        clock.advance(by: 901)
        await #expect(throws: TokenService.Failure.self) { try await tokens.verify(token) }

        let memory = VerifiedTokens(capacity: 3)
        let now = Date(timeIntervalSince1970: 1_000)
        for n in 0..<3 { memory.keep("t\(n)", userID: userID, sessionID: sessionID, expiresAt: now + (n == 0 ? 10 : 100), now: now) }
        // Full: the expired one makes room.
        memory.keep("t3", userID: userID, sessionID: sessionID, expiresAt: now + 100, now: now + 50)
        #expect(memory.count == 3)
        #expect(memory.identity(of: "t0", at: now + 50) == nil)
        #expect(memory.identity(of: "t3", at: now + 50)?.userID == userID)
        // Full of live tokens: emptied, and the new one kept.
        memory.keep("t4", userID: userID, sessionID: sessionID, expiresAt: now + 100, now: now + 50)
        #expect(memory.count == 1)
        #expect(memory.identity(of: "t4", at: now + 50) != nil)
    }

    @Test("access tokens carry sub, iat, exp and jti")
    func claims() async throws {
        try await withParley { app, _ in
            let response = try await app.register("mona")
            let access = try #require(response.string("access_token"))
            let payload = try #require(Data(base64URLEncoded: String(access.split(separator: ".")[1])))
            let claims = try #require(try JSONSerialization.jsonObject(with: payload) as? [String: Any])
            #expect(claims["sub"] as? String == (response["user"] as? [String: Any])?["id"] as? String)
            let iat = try #require(claims["iat"] as? Double)
            let exp = try #require(claims["exp"] as? Double)
            #expect(exp - iat == 900)
            #expect((claims["jti"] as? String)?.isEmpty == false)
        }
    }

    @Test("alg none and algorithm swaps are rejected")
    func algorithmConfusion() async throws {
        try await withParley { app, context in
            let access = try #require(try await app.register("nick").string("access_token"))
            let parts = access.split(separator: ".").map(String.init)
            func encode(_ json: String) -> String { Data(json.utf8).base64URLEncodedString() }

            // alg: none, no signature.
            let none = encode(#"{"alg":"none","typ":"JWT"}"#) + "." + parts[1] + "."
            expectProblem(try await app.send(.GET, "v1/me", token: none), .unauthorized)

            // The same claims signed with HS512 and the very same key: a different algorithm.
            let keys = ServerKeys(secret: context.settings.secretKey!)
            let header = encode(#"{"alg":"HS512","typ":"JWT"}"#)
            let input = header + "." + parts[1]
            let signature = Data(HMAC<SHA512>.authenticationCode(for: Data(input.utf8), using: keys.tokenSigning)).base64URLEncodedString()
            expectProblem(try await app.send(.GET, "v1/me", token: input + "." + signature), .unauthorized)

            // A tampered payload with the original signature.
            let tampered = parts[0] + "." + encode(#"{"sub":"00000000-0000-0000-0000-000000000000"}"#) + "." + parts[2]
            expectProblem(try await app.send(.GET, "v1/me", token: tampered), .unauthorized)

            // The untouched token still works, so the failures above are the algorithm's doing.
            #expect(try await app.send(.GET, "v1/me", token: access).status == .ok)
        }
    }

    @Test("repeated failed logins are slowed, then refused with 429 and Retry-After")
    func loginThrottle() async throws {
        try await withParley({ settings in
            settings.loginThrottle.slowAfter = 2
            settings.loginThrottle.blockAfter = 4
            settings.loginThrottle.baseDelay = .milliseconds(1)
            settings.loginThrottle.maxDelay = .milliseconds(2)
        }) { app, context in
            try await app.register("olga")
            let wrong = #"{"handle":"olga","password":"not the password"}"#
            for _ in 0..<4 {
                expectProblem(try await app.send(.POST, "v1/auth/login", json: wrong), .unauthorized)
            }
            let blocked = try await app.send(.POST, "v1/auth/login", json: #"{"handle":"olga","password":"correct horse battery"}"#)
            expectProblem(blocked, .tooManyRequests)
            let retryAfter = try #require(blocked.headers.first(name: .retryAfter).flatMap(Int.init))
            #expect(retryAfter > 0 && retryAfter <= 900)
            // Another handle is not affected (no client address in-memory), and the window passes.
            #expect(try await app.send(.POST, "v1/auth/login", json: #"{"handle":"someone","password":"x"}"#).status == .unauthorized)
            context.clock.advance(by: TimeInterval(retryAfter))
            #expect(try await app.send(.POST, "v1/auth/login", json: #"{"handle":"olga","password":"correct horse battery"}"#).status == .ok)
        }
    }

    @Test("the throttle delays an account after slowAfter failures, doubling up to the cap, and refuses only an account-and-address pair")
    func throttleDelays() async {
        var policy = Settings.LoginThrottle()
        policy.slowAfter = 2
        policy.blockAfter = 5
        policy.baseDelay = .milliseconds(100)
        policy.maxDelay = .milliseconds(300)
        let clock = TestClock()
        let throttle = LoginThrottle(policy: policy, clock: clock.appClock)
        let keys = LoginThrottle.keys(handle: "X", address: "10.0.0.1")
        #expect(keys == ["pair:x|10.0.0.1", "handle:x", "address:10.0.0.1"])
        #expect(await throttle.check(keys) == .allow(delay: .zero))
        await throttle.recordFailure(keys)
        await throttle.recordFailure(keys)
        #expect(await throttle.check(keys) == .allow(delay: .milliseconds(100)))
        await throttle.recordFailure(keys)
        #expect(await throttle.check(keys) == .allow(delay: .milliseconds(200)))
        await throttle.recordFailure(keys)
        #expect(await throttle.check(keys) == .allow(delay: .milliseconds(300)))
        await throttle.recordFailure(keys)
        #expect(await throttle.check(keys) == .block(retryAfter: 900))
        // The same account from another address: slowed (the account's failures), not refused.
        #expect(await throttle.check(LoginThrottle.keys(handle: "x", address: "10.0.0.2")) == .allow(delay: .milliseconds(300)))
        // Another account from the attacker's address: five failures are under the address's threshold.
        #expect(await throttle.check(LoginThrottle.keys(handle: "y", address: "10.0.0.1")) == .allow(delay: .zero))
        clock.advance(by: 900)
        #expect(await throttle.check(keys) == .allow(delay: .zero))
    }

    @Test("failing on purpose locks nobody out: the owner signs in from another address, and failures over many accounts block no one's right password")
    func throttleHandsOutNoLockout() async throws {
        try await withParley({ settings in
            settings.trustForwardedFor = true
            settings.loginThrottle.slowAfter = 2
            settings.loginThrottle.blockAfter = 4
            settings.loginThrottle.baseDelay = .milliseconds(1)
            settings.loginThrottle.maxDelay = .milliseconds(2)
        }) { app, _ in
            try await app.register("olga")
            try await app.register("pat")
            let attacker: HTTPHeaders = ["X-Forwarded-For": "203.0.113.9"]
            for _ in 0..<4 {
                expectProblem(try await app.send(.POST, "v1/auth/login", json: #"{"handle":"olga","password":"wrong guess"}"#,
                                                 headers: attacker), .unauthorized)
            }
            expectProblem(try await app.send(.POST, "v1/auth/login", json: #"{"handle":"olga","password":"correct horse battery"}"#,
                                             headers: attacker), .tooManyRequests)
            let owner = try await app.send(.POST, "v1/auth/login", json: #"{"handle":"olga","password":"correct horse battery"}"#,
                                           headers: ["X-Forwarded-For": "198.51.100.7"])
            #expect(owner.status == .ok, "\(owner.body)")

            // Forty failures spread over other accounts from one address.
            for n in 0..<40 {
                expectProblem(try await app.send(.POST, "v1/auth/login", json: #"{"handle":"nobody\#(n)","password":"x"}"#,
                                                 headers: attacker), .unauthorized)
            }
            let neighbour = try await app.send(.POST, "v1/auth/login", json: #"{"handle":"pat","password":"correct horse battery"}"#,
                                               headers: attacker)
            #expect(neighbour.status == .ok, "\(neighbour.body)")
        }
    }
}
