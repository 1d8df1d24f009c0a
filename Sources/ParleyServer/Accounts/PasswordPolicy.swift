/// What a password must be: 10-72 bytes (bcrypt reads at most 72), not the handle, not one of
/// the passwords attackers try first.
enum PasswordPolicy {
    static let minimumLength = 10
    static let maximumBytes = 72

    static func check(_ password: String, handle: String?, field: String, into validator: inout Validator) {
        if password.count < minimumLength {
            validator.add(field, "too_short", "must be at least \(minimumLength) characters")
        } else if password.utf8.count > maximumBytes {
            validator.add(field, "too_long", "must be at most \(maximumBytes) bytes")
        } else if let handle, password.lowercased() == handle.lowercased() {
            validator.add(field, "same_as_handle", "must not be your handle")
        } else if common.contains(password.lowercased()) {
            validator.add(field, "too_common", "is one of the most common passwords; choose another")
        }
    }

    /// The most common leaked passwords of 10 or more characters (from public breach-corpus
    /// top lists), compared case-insensitively.
    static let common: Set<String> = [
        "1234567890", "0123456789", "12345678910", "123456789a", "1234567890a", "a123456789",
        "1q2w3e4r5t", "1q2w3e4r5t6y", "1qaz2wsx3edc", "qwertyuiop", "qwertyuiop123", "qwerty1234",
        "qwerty12345", "qwerty123456", "asdfghjkl1", "zxcvbnm123", "password12", "password123",
        "password1234", "password!1", "passw0rd123", "p@ssw0rd123", "iloveyou12", "iloveyou123",
        "1111111111", "0000000000", "9876543210", "1122334455", "1234512345", "abcdefghij",
        "abcd123456", "abc1234567", "abcdef1234", "letmein123", "welcome123", "welcome1234",
        "football123", "baseball123", "superman123", "princess123", "sunshine123", "starwars123",
        "dragon1234", "monkey1234", "michael123", "jennifer123", "computer123", "internet123",
        "administrator", "admin12345", "admin123456", "changeme123", "trustno1234", "whatever123",
        "qazwsxedc123", "qazwsxedcrfv", "zaq12wsxcde", "1qazxsw23edc", "123qweasdzxc", "q1w2e3r4t5",
        "q1w2e3r4t5y6", "passwordpassword", "11111111111", "123123123123", "1234554321",
        "7777777777", "5555555555", "6666666666", "8888888888", "9999999999", "2222222222",
        "3333333333", "4444444444", "aaaaaaaaaa", "qqqqqqqqqq", "123456789012", "1234567890123",
    ]
}
