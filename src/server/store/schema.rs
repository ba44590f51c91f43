//! The database schema as an ordered list of migrations.
//!
//! `PRAGMA user_version` stores how many migrations a database file has applied.
//! Opening a file applies the missing ones in order, each in its own transaction, so
//! a file written by an older build is upgraded in place. Append new migrations to
//! the end of [`MIGRATIONS`]; never edit one that has shipped.

use rusqlite::Connection;

use super::StoreError;

/// Every migration, in order. Migration `i` moves `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: assistants, threads and messages. `seq` gives a stable insertion order,
    // because `created_at` has whole seconds only.
    r#"
    CREATE TABLE assistants (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        instructions TEXT NOT NULL,
        model TEXT NOT NULL,
        tools TEXT NOT NULL,
        settings TEXT NOT NULL,
        file_ids TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE threads (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        metadata TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX threads_assistant ON threads (json_extract(metadata, '$.assistant_id'));
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        thread_id TEXT NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        status TEXT NOT NULL,
        tool_calls TEXT NOT NULL,
        attachments TEXT NOT NULL,
        assistant_id TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX messages_thread ON messages (thread_id, seq);
    "#,
    // 2: uploaded files and their passages, indexed for full-text search (FTS5,
    // ranked with BM25). A passage row belongs to the file named by `file_id`.
    r#"
    CREATE TABLE files (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        filename TEXT NOT NULL,
        purpose TEXT NOT NULL,
        content_type TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        passage_count INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE VIRTUAL TABLE passages USING fts5(
        file_id UNINDEXED,
        position UNINDEXED,
        content,
        tokenize = 'porter unicode61'
    );
    "#,
];

/// Returns the schema version this build writes.
pub fn current_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Applies the migrations that `conn` lacks. A database newer than this build is an
/// error, because this build would not know its tables.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > current_version() {
        return Err(StoreError::TooNew {
            found: version,
            supported: current_version(),
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as u32 + 1)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "applied database migration");
    }
    Ok(())
}
