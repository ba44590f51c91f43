//! Queries on the `messages` table. Messages of a thread are ordered by `seq`, the
//! insertion order.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{StoreError, enum_from_text, enum_text, page_bounds};
use crate::api::types::Message;

const COLUMNS: &str =
    "id, thread_id, role, content, status, tool_calls, attachments, assistant_id, created_at";

/// A row as stored; JSON and enum columns are still text.
struct MessageRow {
    id: String,
    thread_id: String,
    role: String,
    content: String,
    status: String,
    tool_calls: String,
    attachments: String,
    assistant_id: Option<String>,
    created_at: String,
}

impl MessageRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<MessageRow> {
        Ok(MessageRow {
            id: row.get(0)?,
            thread_id: row.get(1)?,
            role: row.get(2)?,
            content: row.get(3)?,
            status: row.get(4)?,
            tool_calls: row.get(5)?,
            attachments: row.get(6)?,
            assistant_id: row.get(7)?,
            created_at: row.get(8)?,
        })
    }

    fn into_message(self) -> Result<Message, StoreError> {
        Ok(Message {
            id: self.id,
            thread_id: self.thread_id,
            role: enum_from_text(self.role)?,
            content: self.content,
            created_at: self.created_at,
            assistant_id: self.assistant_id,
            attachments: serde_json::from_str(&self.attachments)?,
            tool_calls: serde_json::from_str(&self.tool_calls)?,
            status: enum_from_text(self.status)?,
        })
    }
}

fn collect(rows: Vec<MessageRow>) -> Result<Vec<Message>, StoreError> {
    rows.into_iter().map(MessageRow::into_message).collect()
}

/// Appends a message to its thread.
pub fn insert_message(conn: &Connection, message: &Message) -> Result<(), StoreError> {
    conn.execute(
        &format!("INSERT INTO messages ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            message.id,
            message.thread_id,
            enum_text(&message.role),
            message.content,
            enum_text(&message.status),
            serde_json::to_string(&message.tool_calls)?,
            serde_json::to_string(&message.attachments)?,
            message.assistant_id,
            message.created_at,
        ],
    )?;
    Ok(())
}

/// Writes the content, status and tool calls of an existing message, keeping its
/// place in the thread. Returns false when it does not exist.
pub fn update_message(conn: &Connection, message: &Message) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE messages SET content = ?2, status = ?3, tool_calls = ?4 WHERE id = ?1",
        params![
            message.id,
            message.content,
            enum_text(&message.status),
            serde_json::to_string(&message.tool_calls)?,
        ],
    )?;
    Ok(changed > 0)
}

/// Inserts `message`, or updates it when a message with its id exists.
pub fn save_message(conn: &Connection, message: &Message) -> Result<(), StoreError> {
    if !update_message(conn, message)? {
        insert_message(conn, message)?;
    }
    Ok(())
}

/// Deletes one message. Returns false when it did not exist.
pub fn delete_message(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM messages WHERE id = ?1", [id])? > 0)
}

/// Returns the message with `id`, if any.
pub fn get_message(conn: &Connection, id: &str) -> Result<Option<Message>, StoreError> {
    let row = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"),
            [id],
            MessageRow::read,
        )
        .optional()?;
    row.map(MessageRow::into_message).transpose()
}

/// Returns one page of a thread's messages, oldest first, and the thread's total.
pub fn list_messages(
    conn: &Connection,
    thread_id: &str,
    limit: u32,
    offset: u64,
) -> Result<(Vec<Message>, u64), StoreError> {
    let (limit, offset) = page_bounds(limit, offset);
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE thread_id = ?1 ORDER BY seq LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = statement
        .query_map(params![thread_id, limit, offset], MessageRow::read)?
        .collect::<Result<Vec<_>, _>>()?;
    let total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM messages WHERE thread_id = ?1",
        [thread_id],
        |row| row.get(0),
    )?;
    Ok((collect(rows)?, total.max(0) as u64))
}

/// Returns every message of a thread, oldest first.
pub fn thread_messages(conn: &Connection, thread_id: &str) -> Result<Vec<Message>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE thread_id = ?1 ORDER BY seq"
    ))?;
    let rows = statement
        .query_map([thread_id], MessageRow::read)?
        .collect::<Result<Vec<_>, _>>()?;
    collect(rows)
}

/// Returns the assistant message of `thread_id` that holds the tool call `call_id`.
pub fn find_tool_call_message(
    conn: &Connection,
    thread_id: &str,
    call_id: &str,
) -> Result<Option<Message>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE thread_id = ?1 AND role = 'assistant' \
         AND EXISTS (SELECT 1 FROM json_each(messages.tool_calls) \
                     WHERE json_extract(json_each.value, '$.id') = ?2) \
         ORDER BY seq DESC LIMIT 1"
    ))?;
    let row = statement
        .query_row(params![thread_id, call_id], MessageRow::read)
        .optional()?;
    row.map(MessageRow::into_message).transpose()
}
