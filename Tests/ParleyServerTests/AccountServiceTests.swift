import Foundation
import Testing
import VaporTesting
@testable import ParleyServer

/// The account service without HTTP: typed inputs in, domain values and typed errors out.
@Suite("Account service")
struct AccountServiceTests {
    static func service(_ app: Application) throws -> AccountService {
        try #require(app.storage[AccountsKey.self]).service(app.db)
    }

    @Test("registration names every bad field at once and refuses a taken handle as AccountError.accountExists")
    func registration() async throws {
        try await withParley { app, _ in
            let accounts = try Self.service(app)
            let issued = try await accounts.register(RegisterRequest(handle: "Nora", displayName: nil, email: "nora@example.com",
                                                                     password: "correct horse battery"))
            #expect(issued.user.handle == "nora")
            #expect(issued.user.displayName == "nora")
            #expect(!issued.accessToken.isEmpty && !issued.refreshToken.isEmpty)

            let invalid = await #expect(throws: ValidationError.self) {
                try await accounts.register(RegisterRequest(handle: "x!", displayName: "", email: "nope", password: "short"))
            }
            #expect(Set(invalid?.errors.map(\.field) ?? []) == ["handle", "display_name", "email", "password"])
            await #expect(throws: AccountError.accountExists([FieldError(field: "handle", code: "taken", message: "is already taken")])) {
                try await accounts.register(RegisterRequest(handle: "nora", displayName: nil, email: nil, password: "another long password"))
            }
        }
    }

    @Test("sign-in and refresh answer in AccountError: wrong password, unknown token, a rotated token presented again")
    func signInAndRefresh() async throws {
        try await withParley { app, _ in
            let accounts = try Self.service(app)
            let issued = try await accounts.register(RegisterRequest(handle: "omar", displayName: nil, email: nil,
                                                                     password: "correct horse battery"))
            await #expect(throws: AccountError.invalidCredentials) {
                try await accounts.authenticate(login: "omar", password: "wrong password", clientAddress: "192.0.2.1")
            }
            let user = try await accounts.authenticate(login: "OMAR", password: "correct horse battery", clientAddress: "192.0.2.1")
            #expect(user.handle == "omar")

            await #expect(throws: AccountError.invalidRefreshToken) {
                try await accounts.refresh(RefreshRequest(refreshToken: "not-a-token"))
            }
            let rotated = try await accounts.refresh(RefreshRequest(refreshToken: issued.refreshToken))
            #expect(rotated.refreshToken != issued.refreshToken)
            await #expect(throws: AccountError.refreshTokenReused) {
                try await accounts.refresh(RefreshRequest(refreshToken: issued.refreshToken))
            }
            // Reuse ended the whole session: the newest token of the family is refused too.
            await #expect(throws: AccountError.invalidRefreshToken) {
                try await accounts.refresh(RefreshRequest(refreshToken: rotated.refreshToken))
            }
        }
    }
}
