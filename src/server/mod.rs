//! `assisters serve`: the local implementation of the Assisters API.
//!
//! [`spawn`] starts a server in the current tokio runtime and returns its address;
//! tests, the TUI's end-to-end tests and `--local` mode use it with `127.0.0.1:0`.
//! [`serve`] is the subcommand: it resolves the defaults, starts the server and
//! shuts it down gracefully on SIGINT or SIGTERM. The contract is in `docs/api.md`.

mod body;
mod builtin;
mod error;
mod ids;
pub mod limits;
mod middleware;
mod routes;
mod run;
mod state;
pub mod store;
pub mod tools;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::{self, Engine, EngineOptions};
use limits::{ApiKeys, RateLimiter};
use state::{ActiveRuns, AppState};
use store::{Db, Store};

/// Default of `--rate-limit`: requests per minute per key.
pub const DEFAULT_RATE_LIMIT: u32 = 100;
/// Default of `--max-body`, in bytes.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// Default of `--max-upload`, in bytes: 20 MiB.
pub const DEFAULT_MAX_UPLOAD: usize = 20 * 1024 * 1024;
/// Interval of the keep-alive comment on idle streams.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long [`RunningServer::shutdown`] waits for open connections and runs.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The reply engine of a server.
#[derive(Clone)]
pub enum EngineChoice {
    /// An engine from the registry, by `--engine` name.
    Named(String),
    /// An engine built by the caller.
    Instance(Arc<dyn Engine>),
}

impl fmt::Debug for EngineChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineChoice::Named(name) => write!(f, "Named({name:?})"),
            EngineChoice::Instance(engine) => write!(f, "Instance({:?})", engine.name()),
        }
    }
}

/// Settings of a server. `Debug` hides the keys.
#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub db_path: PathBuf,
    /// Accepted keys; at least one.
    pub api_keys: Vec<String>,
    pub engine: EngineChoice,
    /// Requests per 60-second window per key.
    pub rate_limit: u32,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Pause between streamed pieces of the scripted engine.
    pub token_delay: Duration,
    /// Script of the scripted engine; the built-in one when `None`.
    pub script: Option<PathBuf>,
    /// Interval of the keep-alive comment on idle streams.
    pub keep_alive: Duration,
    /// Largest uploaded file, in bytes; separate from `max_body`.
    pub max_upload: usize,
    /// Whether the `code_interpreter` tool may run code.
    pub allow_code_interpreter: bool,
    /// Limits of each `code_interpreter` run.
    pub code_limits: tools::python::CodeLimits,
    /// SearXNG-compatible JSON endpoint of the `web_search` tool.
    pub search_url: Option<String>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("db_path", &self.db_path)
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("engine", &self.engine)
            .field("rate_limit", &self.rate_limit)
            .field("max_body", &self.max_body)
            .field("token_delay", &self.token_delay)
            .field("script", &self.script)
            .field("keep_alive", &self.keep_alive)
            .field("max_upload", &self.max_upload)
            .field("allow_code_interpreter", &self.allow_code_interpreter)
            .field("code_limits", &self.code_limits)
            .field("search_url", &self.search_url)
            .finish()
    }
}

impl ServerConfig {
    /// Settings for an in-process server on an ephemeral loopback port with the
    /// scripted engine and no token delay; change fields as needed.
    pub fn new(db_path: impl Into<PathBuf>, api_key: impl Into<String>) -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_path: db_path.into(),
            api_keys: vec![api_key.into()],
            engine: EngineChoice::Named(engine::scripted::NAME.to_owned()),
            rate_limit: DEFAULT_RATE_LIMIT,
            max_body: DEFAULT_MAX_BODY,
            token_delay: Duration::ZERO,
            script: None,
            keep_alive: KEEP_ALIVE,
            max_upload: DEFAULT_MAX_UPLOAD,
            allow_code_interpreter: false,
            code_limits: tools::python::CodeLimits::default(),
            search_url: None,
        }
    }
}

/// A setting that stops the server from starting, such as a missing key or an invalid
/// script. `assisters serve` exits with code 2 on it, as for other usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A server running in this process.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    tracker: TaskTracker,
}

impl fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl RunningServer {
    /// Returns the API base URL, such as `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Stops gracefully: open streams get an error event and `[DONE]`, partial
    /// replies are saved as incomplete, and this returns once connections and runs
    /// have ended (or after a 10-second grace period).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!(addr = %self.addr, "server shutting down");
        self.shutdown.cancel();
        let served = tokio::time::timeout(SHUTDOWN_GRACE, self.server).await;
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("runs still going after the shutdown grace period");
        }
        match served {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => return Err(err).context("the server failed"),
            Ok(Err(err)) => return Err(anyhow::anyhow!("the server task failed: {err}")),
            Err(_) => tracing::warn!("connections still open after the shutdown grace period"),
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

fn check_config(config: &ServerConfig) -> Result<(), ConfigError> {
    let fail = |message: &str| Err(ConfigError(message.to_owned()));
    if config.api_keys.is_empty() {
        return fail("no API key: pass --api-key KEY or set ASSISTERS_API_KEY");
    }
    if config.api_keys.iter().any(|key| key.trim().is_empty()) {
        return fail("an API key is empty; pass a non-empty --api-key");
    }
    if config.rate_limit == 0 {
        return fail("--rate-limit must be at least 1 request per minute");
    }
    if config.max_body == 0 {
        return fail("--max-body must be at least 1 byte");
    }
    if config.max_upload == 0 {
        return fail("--max-upload must be at least 1 byte");
    }
    if let Some(url) = &config.search_url {
        tools::search::check_endpoint(url).map_err(ConfigError)?;
    }
    Ok(())
}

/// Starts a server in the current runtime.
pub async fn spawn(config: ServerConfig) -> anyhow::Result<RunningServer> {
    check_config(&config)?;
    let engine = match &config.engine {
        EngineChoice::Instance(engine) => Arc::clone(engine),
        EngineChoice::Named(name) => {
            let options = EngineOptions {
                script: config.script.clone(),
                token_delay: config.token_delay,
                ..EngineOptions::default()
            };
            engine::build(name, &options)?
        }
    };
    let db_path = config.db_path.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&db_path))
        .await
        .context("the database task failed")?
        .with_context(|| format!("cannot open the database {}", config.db_path.display()))?;
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let state = AppState {
        db: Db::new(store),
        engine,
        keys: Arc::new(ApiKeys::new(&config.api_keys)),
        limiter: Arc::new(RateLimiter::new(config.rate_limit, limits::WINDOW)),
        max_body: config.max_body,
        max_upload: config.max_upload,
        tools: Arc::new(tools::ToolSettings {
            allow_code: config.allow_code_interpreter,
            code_limits: config.code_limits,
            search_url: config.search_url.clone(),
            http: tools::search::client(),
        }),
        keep_alive: config.keep_alive,
        runs: Arc::new(ActiveRuns::default()),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    };
    let engine_name = state.engine.name().to_owned();
    let app = routes::router(state);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Stream events are small writes; without TCP_NODELAY, Nagle's algorithm delays
    // each one until the previous write is acknowledged.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    let signal = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { signal.cancelled().await })
            .await
    });
    tracing::info!(%addr, engine = %engine_name, db = %config.db_path.display(), "server listening");
    Ok(RunningServer {
        addr,
        shutdown,
        server,
        tracker,
    })
}

/// Runs `assisters serve` until SIGINT or SIGTERM.
pub async fn serve(args: crate::cli::ServeArgs) -> anyhow::Result<()> {
    let mut api_keys = args.api_keys.clone();
    if api_keys.is_empty()
        && let Ok(key) = std::env::var(crate::config::API_KEY_ENV)
        && !key.trim().is_empty()
    {
        api_keys.push(key);
    }
    if api_keys.is_empty() {
        return Err(ConfigError(format!(
            "no API key: pass --api-key KEY or set {} before starting the server",
            crate::config::API_KEY_ENV
        ))
        .into());
    }
    let db_path = match args.db.clone() {
        Some(path) => path,
        None => crate::config::Paths::discover()
            .context("cannot find the data directory (no home directory); pass --db PATH")?
            .data_dir
            .join("assisters.db"),
    };
    let config = ServerConfig {
        listen: args.listen,
        db_path,
        api_keys,
        engine: EngineChoice::Instance(
            engine::build(&args.engine, &args.engine_options())
                .map_err(|err| ConfigError(format!("{err:#}")))?,
        ),
        rate_limit: args.rate_limit,
        max_body: args.max_body,
        token_delay: Duration::from_millis(args.token_delay),
        script: args.script.clone(),
        keep_alive: KEEP_ALIVE,
        max_upload: args.max_upload,
        allow_code_interpreter: args.allow_code_interpreter,
        code_limits: tools::python::CodeLimits {
            timeout: Duration::from_secs(args.code_timeout.max(1)),
            cpu_seconds: args.code_timeout.max(1),
            ..tools::python::CodeLimits::default()
        },
        search_url: args.search_url.clone(),
    };
    tracing::info!(listen = %config.listen, engine = %args.engine, "starting server");
    let server = spawn(config).await?;
    wait_for_signal().await;
    server.shutdown().await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                    _ = terminate.recv() => tracing::info!("SIGTERM received"),
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
