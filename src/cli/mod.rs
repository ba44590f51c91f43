//! Command-line definitions: global flags and one subcommand group per file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub mod app_config;
pub mod assistants;
pub mod chat;
pub mod dispatch;
pub mod error;
pub mod local;
pub mod logging;
pub mod model;
pub mod output;
pub mod setup;
pub mod threads;

/// A full-screen terminal chat client for the Assisters API, and a local server that
/// implements the same API.
#[derive(Debug, Parser)]
#[command(name = "assisters", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags that go before the subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Base URL of the API, including `/v1` [env: ASSISTERS_BASE_URL; default:
    /// https://api.assisters.ai/v1]
    #[arg(long, global = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// Print the API's JSON instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    /// Run a server in this process, on a loopback port, with the embedded model, and
    /// talk to it [default when no API key and no base URL are configured]
    #[arg(long, global = true)]
    pub local: bool,
    /// GGUF model file for --local [default: the fetched default model]
    #[arg(long = "model", value_name = "PATH")]
    pub local_model: Option<PathBuf>,
    /// Fetch the default model without asking when --local needs it
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// Profile from the config file
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Config file [default: config.toml in the config directory]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local Assisters-compatible server
    Serve(ServeArgs),
    /// Manage assistants
    #[command(subcommand)]
    Assistants(AssistantsCommand),
    /// Manage threads
    #[command(subcommand)]
    Threads(ThreadsCommand),
    /// Send one message and stream the reply to stdout
    Chat(ChatArgs),
    /// Fetch the embedded model or show where it is
    #[command(subcommand)]
    Model(model::ModelCommand),
}

/// Flags of `assisters serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// SQLite database file [default: assisters.db in the data directory]
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Accepted API key; repeat for several [default: ASSISTERS_API_KEY]
    #[arg(long = "api-key", value_name = "KEY")]
    pub api_keys: Vec<String>,
    /// Reply engine
    #[arg(long, default_value = "scripted", value_name = "NAME")]
    pub engine: String,
    /// Requests per minute allowed for each key
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub rate_limit: u32,
    /// Reply script for the scripted engine, TOML or JSON [default: the built-in script]
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Delay between streamed tokens of the scripted engine, in milliseconds
    #[arg(long, default_value_t = 20, value_name = "MS")]
    pub token_delay: u64,
    /// Maximum JSON request body, in bytes
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_body: usize,
    /// GGUF model file for the gguf engine [default: the fetched default model]
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// OpenAI-compatible base URL for the openai engine, e.g. http://127.0.0.1:11434/v1
    /// [key: ASSISTERS_UPSTREAM_KEY]
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Model name sent to the upstream [default: the assistant's model]
    #[arg(long, value_name = "NAME")]
    pub upstream_model: Option<String>,
    /// Maximum uploaded file, in bytes (separate from --max-body)
    #[arg(long, default_value_t = 20 * 1024 * 1024, value_name = "BYTES")]
    pub max_upload: usize,
    /// Let the code_interpreter tool run Python code (off by default)
    #[arg(long)]
    pub allow_code_interpreter: bool,
    /// Wall-clock and CPU limit of each code_interpreter run, in seconds
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub code_timeout: u64,
    /// SearXNG-compatible JSON search endpoint for web_search, e.g. http://127.0.0.1:8888/search
    #[arg(long, value_name = "URL")]
    pub search_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AssistantsCommand {
    /// List assistants, newest first
    List(ListArgs),
    /// Show one assistant
    Show { id: String },
    /// Create an assistant
    Create(AssistantFields),
    /// Change the given fields of an assistant
    Update {
        id: String,
        #[command(flatten)]
        fields: AssistantFields,
    },
    /// Delete an assistant
    Delete { id: String },
}

/// One flag per assistant field.
#[derive(Debug, Clone, Default, Args)]
pub struct AssistantFields {
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long)]
    pub instructions: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    /// A built-in tool name, or @FILE holding a function object; repeatable
    #[arg(long = "tool", value_name = "NAME|@FILE")]
    pub tools: Vec<String>,
    /// Sampling temperature, 0 to 2
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Nucleus sampling mass, 0 to 1
    #[arg(long)]
    pub top_p: Option<f64>,
    /// An uploaded file (file_…) that knowledge_base searches; repeatable
    #[arg(long = "file-id", value_name = "ID")]
    pub file_ids: Vec<String>,
}

/// Page flags of list subcommands.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Page size, 1 to 100
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
}

#[derive(Debug, Subcommand)]
pub enum ThreadsCommand {
    /// List threads, newest first
    List {
        #[command(flatten)]
        page: ListArgs,
        /// Only threads created for this assistant
        #[arg(long, value_name = "ID")]
        assistant: Option<String>,
    },
    /// Show a thread and its messages
    Show { id: String },
    /// Create a thread
    Create {
        /// Metadata entry KEY=VALUE; repeatable
        #[arg(long = "metadata", value_name = "KEY=VALUE")]
        metadata: Vec<String>,
        /// Tag the thread with this assistant
        #[arg(long, value_name = "ID")]
        assistant: Option<String>,
    },
    /// Delete a thread
    Delete { id: String },
}

/// Flags of `assisters chat`.
#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// Assistant id or name
    #[arg(long, value_name = "ID_OR_NAME")]
    pub assistant: String,
    /// Continue this thread instead of starting a new one
    #[arg(long, value_name = "ID")]
    pub thread: Option<String>,
    /// The message; `-` reads it from stdin
    pub message: String,
}
