//! Queries on the `assistants` table.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{StoreError, page_bounds};
use crate::api::types::Assistant;

const COLUMNS: &str =
    "id, name, description, instructions, model, tools, settings, file_ids, created_at, updated_at";

/// A row as stored; JSON columns are still text.
struct AssistantRow {
    id: String,
    name: String,
    description: String,
    instructions: String,
    model: String,
    tools: String,
    settings: String,
    file_ids: String,
    created_at: String,
    updated_at: String,
}

impl AssistantRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<AssistantRow> {
        Ok(AssistantRow {
            id: row.get(0)?,
            name: row.get(1)?,
            description: row.get(2)?,
            instructions: row.get(3)?,
            model: row.get(4)?,
            tools: row.get(5)?,
            settings: row.get(6)?,
            file_ids: row.get(7)?,
            created_at: row.get(8)?,
            updated_at: row.get(9)?,
        })
    }

    fn into_assistant(self) -> Result<Assistant, StoreError> {
        Ok(Assistant {
            id: self.id,
            name: self.name,
            description: self.description,
            instructions: self.instructions,
            model: self.model,
            tools: serde_json::from_str(&self.tools)?,
            settings: serde_json::from_str(&self.settings)?,
            file_ids: serde_json::from_str(&self.file_ids)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Inserts a new assistant.
pub fn insert_assistant(conn: &Connection, assistant: &Assistant) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "INSERT INTO assistants ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            assistant.id,
            assistant.name,
            assistant.description,
            assistant.instructions,
            assistant.model,
            serde_json::to_string(&assistant.tools)?,
            serde_json::to_string(&assistant.settings)?,
            serde_json::to_string(&assistant.file_ids)?,
            assistant.created_at,
            assistant.updated_at,
        ],
    )?;
    Ok(())
}

/// Returns the assistant with `id`, if any.
pub fn get_assistant(conn: &Connection, id: &str) -> Result<Option<Assistant>, StoreError> {
    let row = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM assistants WHERE id = ?1"),
            [id],
            AssistantRow::read,
        )
        .optional()?;
    row.map(AssistantRow::into_assistant).transpose()
}

/// Returns one page of assistants, newest first, and the total count.
pub fn list_assistants(
    conn: &Connection,
    limit: u32,
    offset: u64,
) -> Result<(Vec<Assistant>, u64), StoreError> {
    let (limit, offset) = page_bounds(limit, offset);
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM assistants ORDER BY seq DESC LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = statement
        .query_map(params![limit, offset], AssistantRow::read)?
        .collect::<Result<Vec<_>, _>>()?;
    let assistants = rows
        .into_iter()
        .map(AssistantRow::into_assistant)
        .collect::<Result<Vec<_>, _>>()?;
    let total: i64 = conn.query_row("SELECT COUNT(*) FROM assistants", [], |row| row.get(0))?;
    Ok((assistants, total.max(0) as u64))
}

/// Writes every field of an existing assistant. Returns false when it does not exist.
pub fn update_assistant(conn: &Connection, assistant: &Assistant) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE assistants SET name = ?2, description = ?3, instructions = ?4, model = ?5, \
         tools = ?6, settings = ?7, file_ids = ?8, updated_at = ?9 WHERE id = ?1",
        params![
            assistant.id,
            assistant.name,
            assistant.description,
            assistant.instructions,
            assistant.model,
            serde_json::to_string(&assistant.tools)?,
            serde_json::to_string(&assistant.settings)?,
            serde_json::to_string(&assistant.file_ids)?,
            assistant.updated_at,
        ],
    )?;
    Ok(changed > 0)
}

/// Deletes an assistant. Returns false when it did not exist.
pub fn delete_assistant(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM assistants WHERE id = ?1", [id])? > 0)
}
