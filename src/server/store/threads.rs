//! Queries on the `threads` table.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{StoreError, page_bounds};
use crate::api::types::Thread;

fn read_row(row: &Row<'_>) -> rusqlite::Result<(String, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn into_thread((id, metadata, created_at): (String, String, String)) -> Result<Thread, StoreError> {
    Ok(Thread {
        id,
        metadata: serde_json::from_str(&metadata)?,
        created_at,
    })
}

/// Inserts a new thread.
pub fn insert_thread(conn: &Connection, thread: &Thread) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO threads (id, metadata, created_at) VALUES (?1, ?2, ?3)",
        params![
            thread.id,
            serde_json::to_string(&thread.metadata)?,
            thread.created_at
        ],
    )?;
    Ok(())
}

/// Returns the thread with `id`, if any.
pub fn get_thread(conn: &Connection, id: &str) -> Result<Option<Thread>, StoreError> {
    let row = conn
        .query_row(
            "SELECT id, metadata, created_at FROM threads WHERE id = ?1",
            [id],
            read_row,
        )
        .optional()?;
    row.map(into_thread).transpose()
}

/// Returns one page of threads, newest first, and the total count. With
/// `assistant_id`, only threads whose `metadata.assistant_id` equals it count.
pub fn list_threads(
    conn: &Connection,
    limit: u32,
    offset: u64,
    assistant_id: Option<&str>,
) -> Result<(Vec<Thread>, u64), StoreError> {
    let (limit, offset) = page_bounds(limit, offset);
    // `?3 IS NULL` keeps one statement for both the filtered and the full list.
    let filter = "(?3 IS NULL OR json_extract(metadata, '$.assistant_id') = ?3)";
    let mut statement = conn.prepare_cached(&format!(
        "SELECT id, metadata, created_at FROM threads WHERE {filter} \
         ORDER BY seq DESC LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = statement
        .query_map(params![limit, offset, assistant_id], read_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let threads = rows
        .into_iter()
        .map(into_thread)
        .collect::<Result<Vec<_>, _>>()?;
    let total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM threads \
         WHERE (?1 IS NULL OR json_extract(metadata, '$.assistant_id') = ?1)",
        params![assistant_id],
        |row| row.get(0),
    )?;
    Ok((threads, total.max(0) as u64))
}

/// Deletes a thread and its messages in one transaction. Returns false when the
/// thread did not exist.
pub fn delete_thread(conn: &mut Connection, id: &str) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM messages WHERE thread_id = ?1", [id])?;
    let deleted = tx.execute("DELETE FROM threads WHERE id = ?1", [id])? > 0;
    tx.commit()?;
    Ok(deleted)
}
