import Foundation

/// The development server secret: generated once into the data directory (mode 0600) so a
/// fresh checkout runs with no configuration, and reused afterwards so sessions survive restarts.
enum DevelopmentSecret {
    static let fileName = "secret_key"

    /// Returns the secret and whether it was created just now.
    static func loadOrCreate(in directory: String) throws -> (secret: String, path: String, created: Bool) {
        let manager = FileManager.default
        let path = (directory as NSString).appendingPathComponent(fileName)
        if let data = manager.contents(atPath: path),
           let secret = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
           secret.utf8.count >= Settings.minimumSecretLength {
            return (secret, path, false)
        }
        do {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw SettingsError(problems: [
                "PARLEY_DATA_DIR: cannot create \(directory) for the development secret; choose a writable directory or set PARLEY_SECRET_KEY",
            ])
        }
        let secret = OpaqueToken.generate() + OpaqueToken.generate()
        guard manager.createFile(atPath: path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw SettingsError(problems: [
                "PARLEY_DATA_DIR: cannot write the development secret to \(path); choose a writable directory or set PARLEY_SECRET_KEY",
            ])
        }
        // createFile honours the umask; make sure the mode is exactly 0600.
        try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        return (secret, path, true)
    }
}
