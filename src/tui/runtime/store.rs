//! Local state in the data directory: drafts per thread, the last open thread, and the
//! thread index used when the server cannot list threads. Every file is written
//! atomically (a temporary file in the same directory, then a rename).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::super::action::ThreadSummary;

const DRAFTS_FILE: &str = "drafts.json";
const LAST_THREAD_FILE: &str = "last_thread.json";
const INDEX_FILE: &str = "threads.json";

/// The thread open when the app last quit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastThread {
    pub assistant_id: String,
    pub thread_id: String,
}

/// The files of the data directory, and their contents in memory.
#[derive(Debug)]
pub struct LocalStore {
    dir: PathBuf,
    pub drafts: BTreeMap<String, String>,
    pub last_thread: Option<LastThread>,
    pub index: Vec<ThreadSummary>,
}

impl LocalStore {
    /// Reads the files in `dir`. Missing or unreadable files start empty, with a
    /// warning in the log for the unreadable ones.
    pub fn open(dir: &Path) -> LocalStore {
        LocalStore {
            dir: dir.to_path_buf(),
            drafts: read_json(&dir.join(DRAFTS_FILE)).unwrap_or_default(),
            last_thread: read_json(&dir.join(LAST_THREAD_FILE)),
            index: read_json(&dir.join(INDEX_FILE)).unwrap_or_default(),
        }
    }

    pub fn set_draft(&mut self, key: &str, text: &str) -> std::io::Result<()> {
        if text.is_empty() {
            if self.drafts.remove(key).is_none() {
                return Ok(());
            }
        } else {
            self.drafts.insert(key.to_owned(), text.to_owned());
        }
        write_json(&self.dir.join(DRAFTS_FILE), &self.drafts)
    }

    pub fn set_last_thread(&mut self, last: LastThread) -> std::io::Result<()> {
        if self.last_thread.as_ref() == Some(&last) {
            return Ok(());
        }
        self.last_thread = Some(last);
        write_json(&self.dir.join(LAST_THREAD_FILE), &self.last_thread)
    }

    /// Adds a thread to the index, or fills in its title.
    pub fn index_thread(&mut self, summary: ThreadSummary) -> std::io::Result<()> {
        match self.index.iter_mut().find(|t| t.id == summary.id) {
            Some(existing) => {
                if !summary.title.is_empty() {
                    existing.title = summary.title;
                }
            }
            None => self.index.push(summary),
        }
        write_json(&self.dir.join(INDEX_FILE), &self.index)
    }

    pub fn forget_thread(&mut self, id: &str) -> std::io::Result<()> {
        self.index.retain(|t| t.id != id);
        self.drafts.remove(id);
        write_json(&self.dir.join(INDEX_FILE), &self.index)?;
        write_json(&self.dir.join(DRAFTS_FILE), &self.drafts)
    }

    /// Returns the indexed threads of an assistant.
    pub fn threads_of(&self, assistant_id: &str) -> Vec<ThreadSummary> {
        self.index
            .iter()
            .filter(|t| t.assistant_id == assistant_id)
            .cloned()
            .collect()
    }

    /// Returns the indexed title of a thread.
    pub fn title_of(&self, thread_id: &str) -> Option<&str> {
        self.index
            .iter()
            .find(|t| t.id == thread_id)
            .map(|t| t.title.as_str())
            .filter(|t| !t.is_empty())
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "cannot read a local state file");
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(value) => Some(value),
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "local state file is not valid JSON; starting empty");
            None
        }
    }
}

/// Writes `value` as JSON to `path` through a temporary file and a rename, so a crash
/// leaves either the old or the new file. The file is readable by its owner only,
/// because drafts hold whatever the user typed.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, title: &str) -> ThreadSummary {
        ThreadSummary {
            id: id.into(),
            assistant_id: "asst_1".into(),
            title: title.into(),
            created_at: "2024-05-20T12:00:00Z".into(),
        }
    }

    #[test]
    fn state_survives_reopen() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut store = LocalStore::open(dir.path());
        store.set_draft("thread_1", "half a thought")?;
        store.set_last_thread(LastThread {
            assistant_id: "asst_1".into(),
            thread_id: "thread_1".into(),
        })?;
        store.index_thread(summary("thread_1", ""))?;
        store.index_thread(summary("thread_1", "Hello"))?;
        let reopened = LocalStore::open(dir.path());
        assert_eq!(
            reopened.drafts.get("thread_1").map(String::as_str),
            Some("half a thought")
        );
        assert_eq!(
            reopened.last_thread.as_ref().map(|l| l.thread_id.clone()),
            Some("thread_1".to_owned())
        );
        assert_eq!(reopened.title_of("thread_1"), Some("Hello"));
        assert_eq!(reopened.threads_of("asst_1").len(), 1);
        Ok(())
    }

    #[test]
    fn empty_draft_is_removed() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut store = LocalStore::open(dir.path());
        store.set_draft("t", "x")?;
        store.set_draft("t", "")?;
        assert!(LocalStore::open(dir.path()).drafts.is_empty());
        Ok(())
    }

    #[test]
    fn corrupt_file_starts_empty() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(DRAFTS_FILE), "{not json")?;
        assert!(LocalStore::open(dir.path()).drafts.is_empty());
        Ok(())
    }

    #[test]
    fn state_files_are_owner_only() -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let mut store = LocalStore::open(dir.path());
        store.set_draft("thread_1", "a private draft")?;
        let mode = std::fs::metadata(dir.path().join(DRAFTS_FILE))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        Ok(())
    }

    #[test]
    fn write_leaves_no_temp_files() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        write_json(&dir.path().join("x.json"), &vec![1, 2, 3])?;
        let names: Vec<_> = std::fs::read_dir(dir.path())?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        Ok(())
    }
}
