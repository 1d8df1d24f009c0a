/// The database is not what the code needs: a programming or deployment error, never the
/// caller's (answered with a bare 500).
enum StorageError: Error, Equatable {
    /// The operation needs an SQL database (SQLite or PostgreSQL).
    case notSQL
    /// A stored value this version cannot read.
    case unreadable(String)
}
