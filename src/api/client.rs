//! The typed HTTP client for the Assisters API.
//!
//! INTERFACE STUB: the signatures below are the contract the TUI and the CLI code
//! against. The bodies are being written; keep the signatures stable.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;

use super::error::ApiError;
use super::types::*;

/// Default base URL of the hosted service.
pub const DEFAULT_BASE_URL: &str = "https://api.assisters.ai/v1";

/// Rate-limit state read from the `X-RateLimit-*` headers of the last response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the window resets, as sent.
    pub reset_secs: u64,
    /// When the response carrying these headers arrived.
    pub observed_at: Instant,
}

/// Why the client is about to retry a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryReason {
    RateLimited,
    ServerError(u16),
    Transport(String),
}

/// Sent to the retry observer before each retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryNotice {
    /// 1 for the first retry.
    pub attempt: u32,
    pub delay: Duration,
    pub reason: RetryReason,
}

/// Settings of a [`Client`].
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URL including the `/v1` path, without a trailing slash.
    pub base_url: String,
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    /// Maximum time without any bytes from the server on one request.
    pub read_timeout: Duration,
    /// Maximum retries of one request.
    pub max_retries: u32,
    /// Cap of the exponential backoff between retries.
    pub max_backoff: Duration,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_retries", &self.max_retries)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

impl ClientConfig {
    /// Builds a config with default timeouts and retries.
    pub fn new(base_url: impl Into<String>, api_key: Option<String>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            api_key,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            max_retries: 4,
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Query of `GET /v1/threads`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadQuery {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    /// Keeps only threads whose `metadata.assistant_id` is this id.
    pub assistant_id: Option<String>,
}

/// A cancellable stream of reply events; dropping it closes the connection.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ApiError>> + Send>>;

/// Observer called before each retry.
pub type RetryObserver = Arc<dyn Fn(&RetryNotice) + Send + Sync>;

/// A cheap-to-clone handle to the API.
#[derive(Clone)]
pub struct Client {
    _private: (),
}

#[allow(unused_variables)]
impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        todo!()
    }
    pub fn with_retry_observer(self, observer: RetryObserver) -> Self {
        todo!()
    }
    pub fn base_url(&self) -> &str {
        todo!()
    }
    pub fn rate_limit(&self) -> Option<RateLimit> {
        todo!()
    }
    pub async fn list_assistants(&self, limit: u32, offset: u32) -> Result<Page<Assistant>, ApiError> {
        todo!()
    }
    pub async fn get_assistant(&self, id: &str) -> Result<Assistant, ApiError> {
        todo!()
    }
    pub async fn create_assistant(&self, body: &AssistantCreate) -> Result<Assistant, ApiError> {
        todo!()
    }
    pub async fn update_assistant(&self, id: &str, body: &AssistantUpdate) -> Result<Assistant, ApiError> {
        todo!()
    }
    pub async fn delete_assistant(&self, id: &str) -> Result<Deleted, ApiError> {
        todo!()
    }
    pub async fn create_thread(&self, body: &ThreadCreate) -> Result<Thread, ApiError> {
        todo!()
    }
    pub async fn list_threads(&self, query: &ThreadQuery) -> Result<Page<Thread>, ApiError> {
        todo!()
    }
    pub async fn get_thread(&self, id: &str) -> Result<Thread, ApiError> {
        todo!()
    }
    pub async fn delete_thread(&self, id: &str) -> Result<Deleted, ApiError> {
        todo!()
    }
    /// Appends a message; with `assistant_id` set, returns the assistant's reply.
    pub async fn create_message(&self, thread_id: &str, body: &MessageCreate) -> Result<Message, ApiError> {
        todo!()
    }
    pub async fn list_messages(&self, thread_id: &str, limit: u32, offset: u32) -> Result<Page<Message>, ApiError> {
        todo!()
    }
    /// Opens the reply stream of `assistant_id` on the thread's latest user message.
    /// With `regenerate`, the last reply is replaced.
    pub async fn stream(&self, thread_id: &str, assistant_id: &str, regenerate: bool) -> Result<EventStream, ApiError> {
        todo!()
    }
    /// Posts the output of one custom tool call and returns the assistant message.
    pub async fn submit_tool_output(&self, thread_id: &str, body: &ToolOutput) -> Result<Message, ApiError> {
        todo!()
    }
}
