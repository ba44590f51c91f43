//! Reply engines: what produces an assistant's reply on the local server.
//!
//! An engine gets the assistant and the thread's history and returns a stream of
//! [`EngineEvent`]s: text deltas, tool calls, then [`EngineEvent::Done`] (or an
//! error). A stream that ends without `Done` is treated as a failure.
//!
//! Tool use is round-based. When an engine wants tool results it emits
//! [`EngineEvent::ToolCall`]s and then `Done`. The server runs built-in tools itself,
//! records every call on the assistant message, and calls the engine again with the
//! history whose last message is that assistant message, its tool calls now carrying
//! outputs. Custom function tools pause the turn until the client posts their
//! outputs, after which the engine is called again the same way. So an engine never
//! waits for a tool: it reads finished calls from the history. This fits an
//! OpenAI-compatible upstream (one request per round) and an embedded model on a
//! blocking worker thread (one generation per round) alike.
//!
//! Engines must stop promptly when the cancellation token fires; the server also
//! drops the stream.

pub mod gguf;
mod script;
pub mod scripted;
pub mod upstream;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::api::types::{Assistant, Message};

pub use script::{Script, ScriptError};

/// One step of a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// Text to append to the reply.
    Delta(String),
    /// The reply calls a tool; the server assigns the call id.
    ToolCall { name: String, arguments: Value },
    /// The round is over: the reply is finished, or waits for its tool calls.
    Done,
    /// The engine failed; the message is shown to the client.
    Error(String),
}

/// What an engine needs to produce one round of a reply.
#[derive(Debug, Clone)]
pub struct EngineRequest {
    pub assistant: Assistant,
    /// The thread's messages, oldest first. When the reply continues after tool
    /// calls, the last one is the assistant message with those calls and outputs.
    pub messages: Vec<Message>,
}

/// The events of one round, ending with `Done` or `Error`.
pub type EngineStream = Pin<Box<dyn Stream<Item = EngineEvent> + Send>>;

/// A reply engine. Implementations are shared across all runs of a server.
pub trait Engine: Send + Sync {
    /// Returns the name `--engine` selects it by.
    fn name(&self) -> &str;

    /// Starts one round of a reply. The stream stops early once `cancel` fires.
    fn reply(&self, request: EngineRequest, cancel: CancellationToken) -> EngineStream;

    /// Returns true when the engine's model calls built-in tools itself through
    /// function calling. For other engines the server makes some calls on their
    /// behalf, such as running a Python block that the user asks to run.
    fn calls_builtin_tools(&self) -> bool {
        false
    }
}

/// Settings that engines read from the command line.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// A reply script for the scripted engine; the built-in one when `None`.
    pub script: Option<PathBuf>,
    /// Pause between streamed pieces of text.
    pub token_delay: Duration,
    /// GGUF file of the gguf engine; the fetched default model when `None`.
    pub model: Option<PathBuf>,
    /// Base URL of the openai engine's upstream, including `/v1`.
    pub upstream: Option<String>,
    /// Model name the openai engine asks its upstream for.
    pub upstream_model: Option<String>,
}

/// Names `--engine` accepts.
pub const ENGINE_NAMES: &[&str] = &[scripted::NAME, gguf::NAME, upstream::NAME];

/// An engine that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown engine {name:?}; known engines: {known}")]
    Unknown { name: String, known: String },
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// The engine's settings or files are not usable; the message says what to do.
    #[error("{0}")]
    Setup(String),
}

/// Builds the engine called `name`.
pub fn build(name: &str, options: &EngineOptions) -> Result<Arc<dyn Engine>, EngineError> {
    match name {
        scripted::NAME => {
            let script = match &options.script {
                Some(path) => Script::load(path)?,
                None => Script::builtin()?,
            };
            Ok(Arc::new(scripted::Scripted::new(
                script,
                options.token_delay,
            )))
        }
        gguf::NAME => Ok(Arc::new(gguf::GgufEngine::from_options(options)?)),
        upstream::NAME => Ok(Arc::new(upstream::Upstream::from_options(options)?)),
        _ => Err(EngineError::Unknown {
            name: name.to_owned(),
            known: ENGINE_NAMES.join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_engine_lists_known_ones() {
        let err = build("gpt-17", &EngineOptions::default())
            .err()
            .map(|err| err.to_string())
            .unwrap_or_default();
        assert!(err.contains("\"gpt-17\""), "{err}");
        assert!(err.contains("scripted"), "{err}");
    }

    #[test]
    fn scripted_engine_builds_by_name() {
        let engine = build("scripted", &EngineOptions::default());
        assert_eq!(
            engine.ok().map(|e| e.name().to_owned()),
            Some("scripted".into())
        );
    }
}
