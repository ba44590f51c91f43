//! SQLite storage of assistants, threads, messages, and uploaded files with their
//! full-text index.
//!
//! One connection in WAL mode sits behind a mutex. rusqlite is synchronous, so async
//! code reaches it only through [`Db::call`], which runs the closure on tokio's
//! blocking pool. Every write commits before `call` returns, so a route that answers
//! 2xx after a write has made it durable (`synchronous = FULL`).

mod assistants;
mod files;
mod messages;
mod schema;
mod threads;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use assistants::*;
pub use files::*;
pub use messages::*;
pub use schema::current_version;
pub use threads::*;

/// A failure of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("invalid JSON in the database: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the database has schema version {found}, newer than the {supported} this build \
         supports; upgrade assisters or use another --db file"
    )]
    TooNew { found: u32, supported: u32 },
    #[error("a database task failed: {0}")]
    Task(String),
}

/// The synchronous store: one connection behind a mutex.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Directory {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        Store::setup(conn)
    }

    /// Opens a private in-memory database, for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Store, StoreError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        // `journal_mode` returns a row, so it cannot go through `execute_batch`.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        schema::migrate(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` with the connection. Blocks: call it from blocking code only.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls
        // back any open transaction when its guard drops.
        let mut conn = match self.conn.lock() {
            Ok(conn) => conn,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut conn)
    }
}

/// The async handle on the store used by routes and runs.
#[derive(Clone)]
pub struct Db {
    store: Arc<Store>,
}

impl Db {
    pub fn new(store: Store) -> Db {
        Db {
            store: Arc::new(store),
        }
    }

    /// Runs `f` with the connection on the blocking thread pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.with(f))
            .await
            .map_err(|err| StoreError::Task(err.to_string()))?
    }
}

/// Returns the JSON string of a unit enum variant, such as `"requires_action"`.
fn enum_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => String::new(),
    }
}

/// Parses a unit enum variant stored by [`enum_text`].
fn enum_from_text<T: DeserializeOwned>(text: String) -> Result<T, serde_json::Error> {
    serde_json::from_value(serde_json::Value::String(text))
}

/// Returns the page size and offset as SQLite integers.
fn page_bounds(limit: u32, offset: u64) -> (i64, i64) {
    (i64::from(limit), i64::try_from(offset).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
