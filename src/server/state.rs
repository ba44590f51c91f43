//! State shared by every request of one server.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::limits::{ApiKeys, RateLimiter};
use super::store::Db;
use super::tools::ToolSettings;
use crate::engine::Engine;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub engine: Arc<dyn Engine>,
    pub keys: Arc<ApiKeys>,
    pub limiter: Arc<RateLimiter>,
    pub max_body: usize,
    /// Largest uploaded file, in bytes.
    pub max_upload: usize,
    /// Settings of the built-in tools.
    pub tools: Arc<ToolSettings>,
    pub keep_alive: Duration,
    pub runs: Arc<ActiveRuns>,
    /// Fires when the server begins a graceful shutdown.
    pub shutdown: CancellationToken,
    /// Every run task, so shutdown can wait for them to save their replies.
    pub tracker: TaskTracker,
}

/// Threads on which a reply is being generated; at most one run per thread.
#[derive(Debug, Default)]
pub struct ActiveRuns {
    threads: Mutex<HashSet<String>>,
}

impl ActiveRuns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        match self.threads.lock() {
            Ok(threads) => threads,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Marks `thread_id` busy; `None` when a run already holds it.
    pub fn try_begin(self: &Arc<Self>, thread_id: &str) -> Option<RunGuard> {
        if !self.lock().insert(thread_id.to_owned()) {
            return None;
        }
        Some(RunGuard {
            runs: Arc::clone(self),
            thread_id: thread_id.to_owned(),
        })
    }

    /// Returns true while a run holds `thread_id`.
    pub fn is_active(&self, thread_id: &str) -> bool {
        self.lock().contains(thread_id)
    }
}

/// Holds a thread busy until dropped.
#[derive(Debug)]
pub struct RunGuard {
    runs: Arc<ActiveRuns>,
    thread_id: String,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.runs.lock().remove(&self.thread_id);
    }
}
