import Fluent
import SQLKit

/// What sending a message does besides inserting it, done by the database in the same
/// statement: the author's read marker moves to it (both databases), and on SQLite the
/// conversation's last seq and activity time follow the message (there the insert takes its
/// seq from the conversation; PostgreSQL takes it first, with the row lock that orders
/// concurrent senders). Fewer statements on the send path (see docs/benchmarks.md).
struct AddMessageInsertTriggers: AsyncMigration {
    var name: String { "2026-12-08-AddMessageInsertTriggers" }

    func prepare(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        if sql.dialect.name == "sqlite" {
            try await sql.raw("""
                CREATE TRIGGER messages_author_read AFTER INSERT ON messages BEGIN
                    UPDATE memberships SET last_read_seq = NEW.seq
                    WHERE conversation_id = NEW.conversation_id AND user_id = NEW.author_id AND last_read_seq < NEW.seq;
                END
                """).run()
            try await sql.raw("""
                CREATE TRIGGER messages_conversation_seq AFTER INSERT ON messages BEGIN
                    UPDATE conversations SET last_seq = NEW.seq, last_activity_at = NEW.created_at
                    WHERE id = NEW.conversation_id AND last_seq < NEW.seq;
                END
                """).run()
        } else {
            try await sql.raw("""
                CREATE FUNCTION parley_messages_author_read() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    UPDATE memberships SET last_read_seq = NEW.seq
                    WHERE conversation_id = NEW.conversation_id AND user_id = NEW.author_id AND last_read_seq < NEW.seq;
                    RETURN NULL;
                END
                $$
                """).run()
            try await sql.raw("""
                CREATE TRIGGER messages_author_read AFTER INSERT ON messages
                FOR EACH ROW EXECUTE FUNCTION parley_messages_author_read()
                """).run()
        }
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { throw StorageError.notSQL }
        if sql.dialect.name == "sqlite" {
            try await sql.raw("DROP TRIGGER IF EXISTS messages_conversation_seq").run()
            try await sql.raw("DROP TRIGGER IF EXISTS messages_author_read").run()
        } else {
            try await sql.raw("DROP TRIGGER IF EXISTS messages_author_read ON messages").run()
            try await sql.raw("DROP FUNCTION IF EXISTS parley_messages_author_read()").run()
        }
    }
}
