//! The typed HTTP client for the Assisters API.
//!
//! Every call goes through one request path ([`Client::execute`]) that adds the key,
//! applies the connect and read timeouts, records the `X-RateLimit-*` headers and
//! retries with capped exponential backoff and full jitter:
//!
//! - a 429 is retried for every request, after its `Retry-After` when it has one;
//! - a 5xx response or a connection failure is retried only for GET and DELETE, because
//!   repeating a POST could create a second assistant or message;
//! - a read timeout is not retried: the server took the request and went silent, and
//!   asking again would only multiply the wait.
//!
//! Error responses become [`ApiError::Api`]; failures to get an answer become
//! [`ApiError::Transport`]. The key is sent as a sensitive header and never appears in
//! `Debug` output, logs or error messages.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::Stream;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::types::*;
use retry::Failure;

mod retry;

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

impl RateLimit {
    /// Returns the time left until the window resets, counted from `observed_at`.
    pub fn reset_in(&self) -> Duration {
        Duration::from_secs(self.reset_secs).saturating_sub(self.observed_at.elapsed())
    }
}

/// Reason the client is about to retry a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryReason {
    RateLimited,
    ServerError(u16),
    Transport(String),
}

impl std::fmt::Display for RetryReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetryReason::RateLimited => f.write_str("rate limited (429)"),
            RetryReason::ServerError(status) => write!(f, "server error ({status})"),
            RetryReason::Transport(cause) => write!(f, "transport error ({cause})"),
        }
    }
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

/// A cheap-to-clone handle to the API. Clones share the connection pool and the
/// rate-limit state.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    observer: Option<RetryObserver>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    /// `base` as given, without a trailing slash.
    base_url: String,
    /// `host:port` of the base URL, used in error messages.
    origin: String,
    /// The `Authorization` value, marked sensitive.
    auth: Option<HeaderValue>,
    max_retries: u32,
    max_backoff: Duration,
    rate_limit: Mutex<Option<RateLimit>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("api_key", &self.inner.auth.as_ref().map(|_| "<redacted>"))
            .field("max_retries", &self.inner.max_retries)
            .field("max_backoff", &self.inner.max_backoff)
            .field("retry_observer", &self.observer.is_some())
            .finish()
    }
}

/// One request, kept so that it can be sent again on retry.
struct Request<'a> {
    method: Method,
    path: &'a [&'a str],
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    /// A file upload, sent as `multipart/form-data` and built anew for each attempt.
    upload: Option<FileUpload>,
    accept_event_stream: bool,
}

/// A file to upload with [`Client::upload_file`].
#[derive(Clone)]
pub struct FileUpload {
    /// Name the server records, usually the local file's name.
    pub filename: String,
    /// `assistants` or `knowledge_base`.
    pub purpose: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for FileUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileUpload")
            .field("filename", &self.filename)
            .field("purpose", &self.purpose)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl FileUpload {
    fn form(&self) -> reqwest::multipart::Form {
        let part =
            reqwest::multipart::Part::bytes(self.bytes.clone()).file_name(self.filename.clone());
        let part = match content_type_for(&self.filename) {
            Some(mime) => part.mime_str(mime).unwrap_or_else(|_| {
                reqwest::multipart::Part::bytes(self.bytes.clone()).file_name(self.filename.clone())
            }),
            None => part,
        };
        reqwest::multipart::Form::new()
            .text("purpose", self.purpose.clone())
            .part("file", part)
    }
}

/// The content type sent for a file name, by extension.
fn content_type_for(filename: &str) -> Option<&'static str> {
    let extension = filename.rsplit_once('.')?.1.to_ascii_lowercase();
    match extension.as_str() {
        "txt" => Some("text/plain"),
        "md" | "markdown" => Some("text/markdown"),
        "pdf" => Some("application/pdf"),
        _ => None,
    }
}

impl<'a> Request<'a> {
    fn new(method: Method, path: &'a [&'a str]) -> Self {
        Request {
            method,
            path,
            query: Vec::new(),
            body: None,
            upload: None,
            accept_event_stream: false,
        }
    }

    fn json(mut self, body: &impl Serialize) -> Result<Self, ApiError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|err| ApiError::Decode(format!("cannot encode the request body: {err}")))?;
        self.body = Some(bytes);
        Ok(self)
    }

    fn query(mut self, name: &'static str, value: impl ToString) -> Self {
        self.query.push((name, value.to_string()));
        self
    }

    /// GET and DELETE may be repeated safely after a 5xx or a lost connection.
    fn is_idempotent(&self) -> bool {
        self.method == Method::GET || self.method == Method::DELETE
    }
}

impl Client {
    /// Builds a client. Rejects a base URL that is not an absolute http(s) URL, and a
    /// key that cannot be sent in a header.
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        let (base, base_url) = parse_base_url(&config.base_url)?;
        let origin = match (base.host_str(), base.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => base_url.clone(),
        };
        let auth = match &config.api_key {
            Some(key) => Some(auth_header(key)?),
            None => None,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .user_agent(concat!("assisters/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ApiError::Config(format!("cannot build the HTTP client: {err}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                base_url,
                origin,
                auth,
                max_retries: config.max_retries,
                max_backoff: config.max_backoff,
                rate_limit: Mutex::new(None),
            }),
            observer: None,
        })
    }

    /// Sets the function called before each retry, for example to show a countdown.
    pub fn with_retry_observer(mut self, observer: RetryObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Returns the base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Returns the rate-limit state of the last response that carried it.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        match self.inner.rate_limit.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    pub async fn list_assistants(
        &self,
        limit: u32,
        offset: u32,
    ) -> Result<Page<Assistant>, ApiError> {
        let request = Request::new(Method::GET, &["assisters"])
            .query("limit", limit)
            .query("offset", offset);
        self.call(request).await
    }

    pub async fn get_assistant(&self, id: &str) -> Result<Assistant, ApiError> {
        self.call(Request::new(Method::GET, &["assisters", id]))
            .await
    }

    pub async fn create_assistant(&self, body: &AssistantCreate) -> Result<Assistant, ApiError> {
        self.call(Request::new(Method::POST, &["assisters"]).json(body)?)
            .await
    }

    pub async fn update_assistant(
        &self,
        id: &str,
        body: &AssistantUpdate,
    ) -> Result<Assistant, ApiError> {
        self.call(Request::new(Method::POST, &["assisters", id]).json(body)?)
            .await
    }

    pub async fn delete_assistant(&self, id: &str) -> Result<Deleted, ApiError> {
        self.call(Request::new(Method::DELETE, &["assisters", id]))
            .await
    }

    pub async fn create_thread(&self, body: &ThreadCreate) -> Result<Thread, ApiError> {
        self.call(Request::new(Method::POST, &["threads"]).json(body)?)
            .await
    }

    pub async fn list_threads(&self, query: &ThreadQuery) -> Result<Page<Thread>, ApiError> {
        let mut request = Request::new(Method::GET, &["threads"]);
        if let Some(limit) = query.limit {
            request = request.query("limit", limit);
        }
        if let Some(offset) = query.offset {
            request = request.query("offset", offset);
        }
        if let Some(assistant_id) = &query.assistant_id {
            request = request.query("assistant_id", assistant_id);
        }
        self.call(request).await
    }

    pub async fn get_thread(&self, id: &str) -> Result<Thread, ApiError> {
        self.call(Request::new(Method::GET, &["threads", id])).await
    }

    pub async fn delete_thread(&self, id: &str) -> Result<Deleted, ApiError> {
        self.call(Request::new(Method::DELETE, &["threads", id]))
            .await
    }

    /// Appends a message; with `assistant_id` set, returns the assistant's reply.
    pub async fn create_message(
        &self,
        thread_id: &str,
        body: &MessageCreate,
    ) -> Result<Message, ApiError> {
        let path = ["threads", thread_id, "messages"];
        self.call(Request::new(Method::POST, &path).json(body)?)
            .await
    }

    pub async fn list_messages(
        &self,
        thread_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Page<Message>, ApiError> {
        let path = ["threads", thread_id, "messages"];
        let request = Request::new(Method::GET, &path)
            .query("limit", limit)
            .query("offset", offset);
        self.call(request).await
    }

    /// Opens the reply stream of `assistant_id` on the thread's latest user message.
    /// With `regenerate`, the last reply is replaced.
    pub async fn stream(
        &self,
        thread_id: &str,
        assistant_id: &str,
        regenerate: bool,
    ) -> Result<EventStream, ApiError> {
        let path = ["threads", thread_id, "messages", "stream"];
        let mut request = Request::new(Method::GET, &path).query("assistant_id", assistant_id);
        if regenerate {
            request = request.query("regenerate", "true");
        }
        request.accept_event_stream = true;
        let response = self.execute(request).await?;
        Ok(super::stream::event_stream(
            response.bytes_stream(),
            self.inner.origin.clone(),
        ))
    }

    /// Posts the output of one custom tool call and returns the assistant message.
    pub async fn submit_tool_output(
        &self,
        thread_id: &str,
        body: &ToolOutput,
    ) -> Result<Message, ApiError> {
        let path = ["threads", thread_id, "tool_outputs"];
        self.call(Request::new(Method::POST, &path).json(body)?)
            .await
    }

    /// Uploads a file (`POST /v1/files`); the server extracts its text for the
    /// `knowledge_base` tool.
    pub async fn upload_file(&self, upload: FileUpload) -> Result<File, ApiError> {
        let mut request = Request::new(Method::POST, &["files"]);
        request.upload = Some(upload);
        self.call(request).await
    }

    /// Reads a local file and uploads it under its file name.
    pub async fn upload_path(
        &self,
        path: &std::path::Path,
        purpose: &str,
    ) -> Result<File, ApiError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|err| ApiError::Config(format!("cannot read {}: {err}", path.display())))?;
        let filename = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload".to_owned());
        self.upload_file(FileUpload {
            filename,
            purpose: purpose.to_owned(),
            bytes,
        })
        .await
    }

    pub async fn list_files(&self, limit: u32, offset: u32) -> Result<Page<File>, ApiError> {
        let request = Request::new(Method::GET, &["files"])
            .query("limit", limit)
            .query("offset", offset);
        self.call(request).await
    }

    pub async fn get_file(&self, id: &str) -> Result<File, ApiError> {
        self.call(Request::new(Method::GET, &["files", id])).await
    }

    pub async fn delete_file(&self, id: &str) -> Result<Deleted, ApiError> {
        self.call(Request::new(Method::DELETE, &["files", id]))
            .await
    }

    /// Sends a request and decodes its JSON response.
    async fn call<T: DeserializeOwned>(&self, request: Request<'_>) -> Result<T, ApiError> {
        let response = self.execute(request).await?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(err))?;
        serde_json::from_slice(&bytes).map_err(|err| {
            ApiError::Decode(format!(
                "{} responded {status} with a body that is not the expected JSON: {err}",
                self.inner.origin
            ))
        })
    }

    /// The one request path: sends `request`, retrying as the module docs describe, and
    /// returns the first 2xx response.
    async fn execute(&self, request: Request<'_>) -> Result<reqwest::Response, ApiError> {
        let url = self.url(&request);
        let mut attempt = 0;
        loop {
            let failure = match self.send_once(&request, &url).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            let retryable = failure.reason(request.is_idempotent());
            let Some(reason) = retryable.filter(|_| attempt < self.inner.max_retries) else {
                return Err(failure.into_error());
            };
            let Some(delay) = retry::delay(attempt, self.inner.max_backoff, failure.retry_after())
            else {
                return Err(failure.into_error());
            };
            attempt += 1;
            let notice = RetryNotice {
                attempt,
                delay,
                reason,
            };
            tracing::warn!(
                method = %request.method,
                path = url.path(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                reason = %notice.reason,
                "retrying request"
            );
            if let Some(observer) = &self.observer {
                observer(&notice);
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends `request` once. A non-2xx response is read and parsed into an error.
    async fn send_once(
        &self,
        request: &Request<'_>,
        url: &Url,
    ) -> Result<reqwest::Response, Failure> {
        let mut builder = self.inner.http.request(request.method.clone(), url.clone());
        if let Some(auth) = &self.inner.auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        if request.accept_event_stream {
            builder = builder.header(ACCEPT, "text/event-stream");
        } else {
            builder = builder.header(ACCEPT, "application/json");
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        if let Some(upload) = &request.upload {
            builder = builder.multipart(upload.form());
        }
        let response = builder.send().await.map_err(|err| {
            let stalled = err.is_timeout() && !err.is_connect();
            let error = self.transport_error(err);
            if stalled {
                Failure::TimedOut(error)
            } else {
                Failure::Transport(error)
            }
        })?;
        self.record_rate_limit(response.headers());
        let status = response.status();
        tracing::debug!(method = %request.method, path = url.path(), status = status.as_u16(), "response");
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = retry::parse_retry_after(response.headers());
        let body = response.bytes().await.unwrap_or_default();
        let error = retry::error_from_answer(status, &body, retry_after, &self.inner.origin);
        tracing::debug!(
            status = status.as_u16(),
            code = error.code(),
            "error answer"
        );
        Err(Failure::Status(status, error))
    }

    fn url(&self, request: &Request<'_>) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(request.path);
        }
        if !request.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &request.query {
                pairs.append_pair(name, value);
            }
        }
        url
    }

    fn record_rate_limit(&self, headers: &HeaderMap) {
        let Some(state) = retry::parse_rate_limit(headers) else {
            return;
        };
        match self.inner.rate_limit.lock() {
            Ok(mut guard) => *guard = Some(state),
            Err(poisoned) => *poisoned.into_inner() = Some(state),
        }
    }

    fn transport_error(&self, err: reqwest::Error) -> ApiError {
        ApiError::Transport(retry::describe_transport(&self.inner.origin, err))
    }
}

/// Checks a base URL and returns it parsed and as a string without a trailing slash.
fn parse_base_url(value: &str) -> Result<(Url, String), ApiError> {
    let invalid = |reason: &str| {
        ApiError::Config(format!(
            "invalid base URL {value:?}: {reason}; expected an absolute URL such as {DEFAULT_BASE_URL}"
        ))
    };
    let trimmed = value.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|err| invalid(&err.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the URL must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("put the key in ASSISTERS_API_KEY, not in the URL"));
    }
    Ok((url, trimmed.to_owned()))
}

fn auth_header(key: &str) -> Result<HeaderValue, ApiError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", key.trim())).map_err(|_| {
        ApiError::Config(
            "the API key contains characters that cannot be sent in an HTTP header; \
             check ASSISTERS_API_KEY or the config file"
                .to_owned(),
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_key() {
        let config = ClientConfig::new("http://127.0.0.1:9/v1", Some("sk-secret-123".into()));
        let config_debug = format!("{config:?}");
        assert!(!config_debug.contains("sk-secret-123"), "{config_debug}");
        let client = Client::new(config).map_err(|err| err.to_string());
        let client_debug = format!("{client:?}");
        assert!(client_debug.contains("127.0.0.1"), "{client_debug}");
        assert!(!client_debug.contains("sk-secret-123"), "{client_debug}");
    }

    #[test]
    fn invalid_base_url_is_named() {
        for value in ["not a url", "ftp://127.0.0.1/v1", "http://127.0.0.1/v1?x=1"] {
            let err = Client::new(ClientConfig::new(value, None)).err();
            let message = err.map(|err| err.to_string()).unwrap_or_default();
            assert!(message.starts_with("invalid_config:"), "{message}");
            assert!(message.contains(&format!("{value:?}")), "{message}");
        }
    }

    #[test]
    fn trailing_slash_is_removed() {
        let client = Client::new(ClientConfig::new("http://127.0.0.1:8080/v1/", None));
        let base = client.map(|client| client.base_url().to_owned()).ok();
        assert_eq!(base.as_deref(), Some("http://127.0.0.1:8080/v1"));
    }

    #[test]
    fn ids_are_percent_encoded() {
        let client = Client::new(ClientConfig::new("http://127.0.0.1:8080/v1", None));
        let Ok(client) = client else {
            panic!("client should build");
        };
        let url = client.url(&Request::new(Method::GET, &["assisters", "../x y"]));
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/v1/assisters/..%2Fx%20y"
        );
    }
}
