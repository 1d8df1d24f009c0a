/// Input that breaks a rule, naming every field that is wrong. Services throw it (through
/// `Validator.check()`); `ProblemMiddleware` answers 422 with the list.
struct ValidationError: Error, Equatable, Sendable {
    var errors: [FieldError]

    init(_ errors: [FieldError]) {
        self.errors = errors
    }

    init(field: String, code: String, message: String) {
        self.errors = [FieldError(field: field, code: code, message: message)]
    }
}
