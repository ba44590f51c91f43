//! Queries on the `files` table and its full-text index `passages` (FTS5, BM25).
//!
//! A file and its passages are written and deleted in one transaction, so the index
//! never contains passages of a file that does not exist, nor misses those of one that
//! does.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{StoreError, page_bounds};
use crate::api::types::File;

const COLUMNS: &str = "id, filename, purpose, content_type, bytes, passage_count, created_at";

fn read_file(row: &Row<'_>) -> rusqlite::Result<File> {
    let bytes: i64 = row.get(4)?;
    let passages: i64 = row.get(5)?;
    Ok(File {
        id: row.get(0)?,
        object: "file".to_owned(),
        filename: row.get(1)?,
        purpose: row.get(2)?,
        content_type: row.get(3)?,
        bytes: bytes.max(0) as u64,
        passages: passages.max(0) as u64,
        created_at: row.get(6)?,
    })
}

/// Inserts a file and its passages in one transaction; `file.passages` is set from
/// `passages`.
pub fn insert_file(
    conn: &mut Connection,
    file: &File,
    passages: &[String],
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute(
        &format!("INSERT INTO files ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            file.id,
            file.filename,
            file.purpose,
            file.content_type,
            i64::try_from(file.bytes).unwrap_or(i64::MAX),
            passages.len() as i64,
            file.created_at,
        ],
    )?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO passages (file_id, position, content) VALUES (?1, ?2, ?3)",
        )?;
        for (position, passage) in passages.iter().enumerate() {
            insert.execute(params![file.id, position as i64, passage])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Returns the file with `id`, if any.
pub fn get_file(conn: &Connection, id: &str) -> Result<Option<File>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM files WHERE id = ?1"),
            [id],
            read_file,
        )
        .optional()?)
}

/// Returns one page of files, newest first, and the total count.
pub fn list_files(
    conn: &Connection,
    limit: u32,
    offset: u64,
) -> Result<(Vec<File>, u64), StoreError> {
    let (limit, offset) = page_bounds(limit, offset);
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM files ORDER BY seq DESC LIMIT ?1 OFFSET ?2"
    ))?;
    let files = statement
        .query_map(params![limit, offset], read_file)?
        .collect::<Result<Vec<_>, _>>()?;
    let total: i64 = conn.query_row("SELECT COUNT(*) FROM files", [], |row| row.get(0))?;
    Ok((files, total.max(0) as u64))
}

/// Deletes a file and its passages in one transaction. Returns false when it did
/// not exist.
pub fn delete_file(conn: &mut Connection, id: &str) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let deleted = tx.execute("DELETE FROM files WHERE id = ?1", [id])? > 0;
    tx.execute("DELETE FROM passages WHERE file_id = ?1", [id])?;
    tx.commit()?;
    Ok(deleted)
}

/// Returns the first of `ids` that names no file.
pub fn first_missing_file(conn: &Connection, ids: &[String]) -> Result<Option<usize>, StoreError> {
    for (index, id) in ids.iter().enumerate() {
        let found: Option<i64> = conn
            .query_row("SELECT 1 FROM files WHERE id = ?1", [id], |row| row.get(0))
            .optional()?;
        if found.is_none() {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct PassageHit {
    pub file_id: String,
    pub filename: String,
    pub content: String,
    /// BM25 score; lower is better, as SQLite reports it.
    pub score: f64,
}

/// Returns the best `limit` passages of the files `file_ids` for the FTS5 query
/// `query`, best first. `query` must be built by the caller from quoted terms only.
pub fn search_passages(
    conn: &Connection,
    file_ids: &[String],
    query: &str,
    limit: usize,
) -> Result<Vec<PassageHit>, StoreError> {
    let list = serde_json::to_string(file_ids)?;
    let mut statement = conn.prepare_cached(
        "SELECT passages.file_id, files.filename, passages.content, bm25(passages) AS score \
         FROM passages JOIN files ON files.id = passages.file_id \
         WHERE passages MATCH ?1 AND passages.file_id IN (SELECT value FROM json_each(?2)) \
         ORDER BY score LIMIT ?3",
    )?;
    let hits = statement
        .query_map(params![query, list, limit as i64], |row| {
            Ok(PassageHit {
                file_id: row.get(0)?,
                filename: row.get(1)?,
                content: row.get(2)?,
                score: row.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(hits)
}

/// Row counts of the files table and the passage index, to check consistency.
pub fn file_counts(conn: &Connection) -> Result<(u64, u64), StoreError> {
    let files: i64 = conn.query_row("SELECT COUNT(*) FROM files", [], |row| row.get(0))?;
    let passages: i64 = conn.query_row("SELECT COUNT(*) FROM passages", [], |row| row.get(0))?;
    Ok((files.max(0) as u64, passages.max(0) as u64))
}
