import Vapor

// The one place where the features' typed errors become HTTP problems. Services throw
// these; only `ProblemMiddleware` (through `ProblemError(_:)`) turns them into responses.

extension ProblemError {
    init(_ error: ValidationError) {
        self = .validation(error.errors)
    }

    init(_ error: ConversationError) {
        switch error {
        case .conversationNotFound: self = .notFound("No such conversation.")
        case .memberNotFound: self = .notFound("No such member.")
        case .messageNotFound: self = .notFound("No such message.")
        case .notAMember: self = .forbidden("Join the channel first.", slug: "not-a-member")
        case .notAManager(let detail): self = .forbidden(detail, slug: "not-a-manager")
        case .notTheOwner(let detail): self = .forbidden(detail, slug: "not-the-owner")
        case .notTheAuthor: self = .forbidden("Only the author may edit a message.", slug: "not-the-author")
        case .mayNotDelete:
            self = .forbidden("Only the author, or the conversation's owner or admins, may delete a message.", slug: "not-allowed")
        case .roleTooHigh(let detail): self = .forbidden(detail, slug: "role-too-high")
        case .conflict(let detail): self = .conflict(detail)
        case .messageChanged:
            self = ProblemError(.preconditionFailed, slug: "etag-mismatch", detail: "The message changed since you read it; fetch it again.")
        case .idempotencyKeyReused:
            self = ProblemError(.unprocessableEntity, slug: "idempotency-key-reused",
                                title: "This Idempotency-Key was used for a different request",
                                detail: "Send a new Idempotency-Key for a new message.",
                                errors: [FieldError(field: "Idempotency-Key", code: "reused", message: "was already used with a different body")])
        }
    }

    init(_ error: AccountError) {
        switch error {
        case .accountExists(let fields): self = .conflict("An account with these details already exists.", errors: fields)
        case .emailTaken:
            self = .conflict("That email is already registered.",
                             errors: [FieldError(field: "email", code: "taken", message: "is already registered")])
        case .tooManyAttempts(let retryAfter):
            self = ProblemError(.tooManyRequests, slug: "too-many-attempts",
                                detail: "Too many failed sign-ins. Try again in \(retryAfter) seconds.",
                                headers: ["Retry-After": String(retryAfter)])
        case .invalidCredentials: self = .unauthorized("The handle or password is wrong.", slug: "invalid-credentials")
        case .invalidRefreshToken: self = .unauthorized("The refresh token is invalid or expired.", slug: "invalid-refresh-token")
        case .refreshTokenReused:
            self = .unauthorized("This refresh token was already used; the session has been ended.", slug: "refresh-token-reused")
        case .userNotFound: self = .notFound("No such user.")
        }
    }

    init(_ error: AssistantError) {
        switch error {
        case .notAnAdministrator: self = .forbidden("Only site administrators manage assistants.", slug: "not-an-administrator")
        case .assistantNotFound: self = .notFound("No such assistant.")
        case .runNotFound: self = .notFound("No such run.")
        case .mayNotDecide:
            self = .forbidden("Only the member who asked, or the conversation's owner or admins, may do this.", slug: "not-allowed")
        case .conflict(let detail): self = .conflict(detail)
        }
    }
}

extension ProblemError {
    init(_ error: InviteError) {
        switch error {
        case .notFound: self = .notFound("No such invite, or it has expired, been used up or been revoked.")
        case .mayNotInvite:
            self = .forbidden("Conversation invites are for its owner and admins; site invites for site administrators.", slug: "not-allowed")
        case .directConversation: self = .conflict("A direct conversation has no room for more people.")
        }
    }
}

extension ProblemError {
    init(_ error: FileError) {
        switch error {
        case .notFound: self = .notFound("No such upload.")
        case .tooLarge(let limit):
            self = ProblemError(.payloadTooLarge, slug: "file-too-large", detail: "A file may be at most \(limit) bytes.")
        case .typeNotAllowed(let sniffed, let allowed):
            self = ProblemError(.unsupportedMediaType, slug: "file-type-not-allowed",
                                detail: "This file is \(sniffed) (judged from its bytes); this server accepts \(allowed.joined(separator: ", ")).")
        case .empty: self = .validation(field: "body", code: "empty", message: "the file is empty")
        case .attached: self = .conflict("A message carries this file; delete the message instead.")
        case .noThumbnail: self = ProblemError(.notFound, slug: "no-thumbnail", detail: "This file has no thumbnail.")
        }
    }

    init(_ error: ModerationError) {
        switch error {
        case .notAModerator: self = .forbidden("Only moderators may do this.", slug: "not-a-moderator")
        case .messageNotFound: self = .notFound("No such message.")
        case .alreadyDecided: self = .conflict("The message is already removed or deleted.")
        }
    }

    init(_ error: ModelRegistryError) {
        switch error {
        case .unknownModel(let name): self = .notFound("No model named \(name).")
        case .versionNotFound: self = .notFound("No such model version.")
        case .damagedArtifact(let detail):
            self = ProblemError(.unprocessableEntity, slug: "damaged-artifact", title: "The model's artifact is damaged",
                                detail: "This version cannot serve: \(detail). The version serving now keeps serving.")
        case .nothingToRollBack(let detail): self = .conflict("Nothing to roll back to: \(detail).")
        case .notAnAdministrator: self = .forbidden("Only site administrators may manage models.", slug: "not-an-administrator")
        case .tooFewExamples(let detail):
            self = ProblemError(.unprocessableEntity, slug: "too-few-examples", title: "Not enough labelled examples", detail: detail)
        case .chartNotFound(let charts): self = .notFound("No such chart; a version has \(charts).")
        case .noDrift(let name): self = .notFound("\(name) has no production version that has scored a message on this node yet.")
        }
    }
}
