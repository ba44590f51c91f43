//! The upstream engine (`--engine openai`): forwards each round of a reply to any
//! OpenAI-compatible `POST {base}/chat/completions` with `stream: true` (Ollama,
//! llama.cpp's server, vLLM, LM Studio, OpenAI, the Assisters service's own
//! OpenAI-compatible endpoint).
//!
//! The assistant's instructions become the system message and its tools, built-in
//! ones included, the request's `tools`. Streamed `tool_calls` pieces are put together by index and come
//! back as [`EngineEvent::ToolCall`]s at the end of the round; tool outputs recorded on
//! the thread go back as `tool` messages in the next round. An HTTP error, an error
//! event or a stream cut before its end becomes [`EngineEvent::Error`] carrying the
//! upstream's own message.
//!
//! Configuration: `--upstream URL` (the base, ending in `/v1`), `--upstream-model
//! NAME` (else the assistant's `model`), the key from `ASSISTERS_UPSTREAM_KEY`, and,
//! for the Assisters endpoint, the `assisterId` to send from
//! `ASSISTERS_UPSTREAM_ASSISTER_ID`.

use std::collections::BTreeMap;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::{Engine, EngineEvent, EngineRequest, EngineStream};
use crate::api::types::{Assistant, Message, Role, Tool};

/// The name `--engine` selects this engine by.
pub const NAME: &str = "openai";
/// Environment variable holding the upstream's API key.
pub const KEY_ENV: &str = "ASSISTERS_UPSTREAM_KEY";
/// Environment variable holding the `assisterId` sent to the Assisters endpoint.
pub const ASSISTER_ID_ENV: &str = "ASSISTERS_UPSTREAM_ASSISTER_ID";

/// Address, model and credentials of the upstream endpoint.
#[derive(Clone)]
pub struct UpstreamConfig {
    /// Base URL including `/v1`, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// Model to ask for; the assistant's `model` when `None`.
    pub model: Option<String>,
    /// Bearer key; never logged nor printed.
    pub key: Option<String>,
    /// Sent as `assisterId` when set.
    pub assister_id: Option<String>,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("assister_id", &self.assister_id)
            .finish()
    }
}

impl UpstreamConfig {
    /// Builds the configuration from the flags and the environment.
    pub fn from_env(base_url: Option<&str>, model: Option<&str>) -> Result<Self, String> {
        let base_url = base_url
            .ok_or("the openai engine needs --upstream URL, e.g. http://127.0.0.1:11434/v1")?;
        let parsed = reqwest::Url::parse(base_url)
            .map_err(|err| format!("--upstream {base_url:?} is not a URL: {err}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "--upstream {base_url:?} must start with http:// or https://"
            ));
        }
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Ok(UpstreamConfig {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.map(str::to_owned),
            key: non_empty(KEY_ENV),
            assister_id: non_empty(ASSISTER_ID_ENV),
        })
    }
}

/// The upstream engine.
pub struct Upstream {
    config: UpstreamConfig,
    client: reqwest::Client,
}

impl Upstream {
    /// Builds the engine from `--upstream`, `--upstream-model` and the environment.
    pub fn from_options(options: &super::EngineOptions) -> Result<Self, super::EngineError> {
        let config = UpstreamConfig::from_env(
            options.upstream.as_deref(),
            options.upstream_model.as_deref(),
        )
        .map_err(super::EngineError::Setup)?;
        Self::new(config).map_err(super::EngineError::Setup)
    }

    /// Builds the engine and its HTTP client.
    pub fn new(config: UpstreamConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(20))
            .read_timeout(Duration::from_secs(300))
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(Upstream { config, client })
    }

    /// Builds the `chat/completions` request body for one round.
    pub fn request_body(&self, request: &EngineRequest) -> Value {
        let assistant = &request.assistant;
        let model = self
            .config
            .model
            .clone()
            .unwrap_or_else(|| assistant.model.clone());
        let mut body = json!({
            "model": model,
            "messages": upstream_messages(assistant, &request.messages),
            "stream": true,
        });
        let tools = upstream_tools(assistant);
        if !tools.is_empty() {
            body["tools"] = Value::Array(tools);
        }
        if let Some(temperature) = assistant.settings.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(top_p) = assistant.settings.top_p {
            body["top_p"] = json!(top_p);
        }
        if let Some(id) = &self.config.assister_id {
            body["assisterId"] = json!(id);
        }
        body
    }
}

impl Engine for Upstream {
    fn name(&self) -> &str {
        NAME
    }

    fn calls_builtin_tools(&self) -> bool {
        true
    }

    fn reply(&self, request: EngineRequest, cancel: CancellationToken) -> EngineStream {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let url = format!("{}/chat/completions", self.config.base_url);
                let body = self.request_body(&request);
                let call = self.client.post(url).json(&body);
                let call = match &self.config.key {
                    Some(key) => call.bearer_auth(key),
                    None => call,
                };
                handle.spawn(async move {
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = run_round(call, &tx) => {}
                    }
                });
            }
            Err(_) => {
                let _ = tx.send(EngineEvent::Error(
                    "the upstream engine needs a Tokio runtime".into(),
                ));
            }
        }
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}

/// Converts the thread into OpenAI chat messages, with the instructions as the system message.
pub fn upstream_messages(assistant: &Assistant, messages: &[Message]) -> Vec<Value> {
    let mut out = Vec::with_capacity(messages.len() + 1);
    if !assistant.instructions.trim().is_empty() {
        out.push(json!({"role": "system", "content": assistant.instructions}));
    }
    for message in messages {
        match message.role {
            Role::User => out.push(json!({"role": "user", "content": message.content})),
            Role::System => out.push(json!({"role": "system", "content": message.content})),
            Role::Assistant if message.tool_calls.is_empty() => {
                out.push(json!({"role": "assistant", "content": message.content}));
            }
            Role::Assistant => push_tool_round(&mut out, message),
            Role::Tool | Role::Unknown => {}
        }
    }
    out
}

/// Appends an assistant message with tool calls, followed by one `tool` message per call.
fn push_tool_round(out: &mut Vec<Value>, message: &Message) {
    let calls: Vec<Value> = message
        .tool_calls
        .iter()
        .map(|call| {
            json!({
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments.to_string()},
            })
        })
        .collect();
    let content = if message.content.is_empty() {
        Value::Null
    } else {
        json!(message.content)
    };
    out.push(json!({"role": "assistant", "content": content, "tool_calls": calls}));
    for call in &message.tool_calls {
        let output = call
            .output
            .clone()
            .unwrap_or_else(|| "(no output)".to_owned());
        out.push(json!({"role": "tool", "tool_call_id": call.id, "content": output}));
    }
}

/// Converts the assistant's tools into OpenAI's `tools` shape. Built-in tools are
/// offered as functions too, so the model can call them, for instance to write the
/// code for `code_interpreter`. The server runs them when the call comes back.
pub fn upstream_tools(assistant: &Assistant) -> Vec<Value> {
    assistant
        .tools
        .iter()
        .filter_map(|tool| {
            let (name, description, parameters) = match tool {
                Tool::Function(function) => (
                    function.name.as_str(),
                    function.description.as_str(),
                    function.parameters.clone(),
                ),
                Tool::Builtin(name) => {
                    let (description, parameters) = builtin_schema(name)?;
                    (name.as_str(), description, parameters)
                }
            };
            Some(json!({
                "type": "function",
                "function": {"name": name, "description": description, "parameters": parameters},
            }))
        })
        .collect()
}

/// Returns the description and parameters schema offered for a built-in tool.
fn builtin_schema(name: &str) -> Option<(&'static str, Value)> {
    let text_parameter = |key: &str, about: &str| {
        json!({
            "type": "object",
            "properties": {key: {"type": "string", "description": about}},
            "required": [key],
        })
    };
    match name {
        "knowledge_base" => Some((
            "Search the user's uploaded documents; returns the best matching passages.",
            text_parameter("query", "Words to search the documents for"),
        )),
        "code_interpreter" => Some((
            "Run a Python 3 program and return its stdout, stderr and exit status. \
             Print the values you need; there is no network access.",
            text_parameter("code", "The complete Python program"),
        )),
        "web_search" => Some((
            "Search the web; returns titles, URLs and snippets of the top results.",
            text_parameter("query", "The search query"),
        )),
        _ => None,
    }
}

type Sender = UnboundedSender<EngineEvent>;

async fn run_round(call: reqwest::RequestBuilder, tx: &Sender) {
    let response = match call.send().await {
        Ok(response) => response,
        Err(err) => {
            let _ = tx.send(EngineEvent::Error(format!(
                "cannot reach the upstream: {}",
                err.without_url()
            )));
            return;
        }
    };
    let status = response.status();
    if !status.is_success() {
        let _ = tx.send(EngineEvent::Error(http_error(response).await));
        return;
    }
    let mut events = response.bytes_stream().eventsource();
    let mut calls = ToolCalls::default();
    let mut finished = false;
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                let _ = tx.send(EngineEvent::Error(format!(
                    "the upstream stream broke off: {err}"
                )));
                return;
            }
        };
        if event.data.trim() == "[DONE]" {
            finished = true;
            break;
        }
        match apply_chunk(&event.data, &mut calls, tx) {
            Ok(done) => finished |= done,
            Err(message) => {
                let _ = tx.send(EngineEvent::Error(message));
                return;
            }
        }
    }
    if !finished {
        let _ = tx.send(EngineEvent::Error(
            "the upstream closed the stream before the reply was finished".into(),
        ));
        return;
    }
    for event in calls.finish() {
        let _ = tx.send(event);
    }
    let _ = tx.send(EngineEvent::Done);
}

/// Applies one streamed chunk; returns whether it carried a `finish_reason`.
fn apply_chunk(data: &str, calls: &mut ToolCalls, tx: &Sender) -> Result<bool, String> {
    let chunk: Value = serde_json::from_str(data).map_err(|err| {
        format!(
            "the upstream sent an event that is not JSON ({err}): {}",
            clip(data)
        )
    })?;
    if let Some(error) = chunk.get("error") {
        return Err(format!("the upstream failed: {}", error_message(error)));
    }
    let mut finished = false;
    for choice in chunk["choices"].as_array().into_iter().flatten() {
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|text| !text.is_empty()) {
            let _ = tx.send(EngineEvent::Delta(text.to_owned()));
        }
        for piece in delta["tool_calls"].as_array().into_iter().flatten() {
            calls.add(piece);
        }
        finished |= choice["finish_reason"].as_str().is_some();
    }
    Ok(finished)
}

/// Tool calls assembled from streamed pieces, by index.
#[derive(Default)]
struct ToolCalls {
    calls: BTreeMap<u64, (String, String)>,
}

impl ToolCalls {
    fn add(&mut self, piece: &Value) {
        let index = piece["index"].as_u64().unwrap_or(0);
        let entry = self.calls.entry(index).or_default();
        if let Some(name) = piece["function"]["name"].as_str() {
            entry.0.push_str(name);
        }
        if let Some(arguments) = piece["function"]["arguments"].as_str() {
            entry.1.push_str(arguments);
        }
    }

    fn finish(self) -> Vec<EngineEvent> {
        self.calls
            .into_values()
            .map(|(name, arguments)| {
                let arguments = if arguments.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&arguments).unwrap_or(Value::String(arguments))
                };
                EngineEvent::ToolCall { name, arguments }
            })
            .collect()
    }
}

/// Formats a non-success response with the upstream's own error message.
async fn http_error(response: reqwest::Response) -> String {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|value| value.get("error").map(error_message))
        .unwrap_or_else(|| clip(body.trim()).to_owned());
    let code = status.as_u16();
    match code {
        401 | 403 => format!(
            "the upstream rejected the key ({code}): {message}; set {KEY_ENV} to a valid key"
        ),
        429 => match retry_after {
            Some(after) => {
                format!("the upstream is rate limiting ({code}): {message}; retry after {after} s")
            }
            None => format!("the upstream is rate limiting ({code}): {message}"),
        },
        _ => format!("the upstream answered {status}: {message}"),
    }
}

/// Returns the `message` of an OpenAI error object, or the whole value as text.
fn error_message(error: &Value) -> String {
    match error.get("message").and_then(Value::as_str) {
        Some(message) => message.to_owned(),
        None => match error.as_str() {
            Some(text) => text.to_owned(),
            None => error.to_string(),
        },
    }
}

/// At most 300 bytes of `text`, cut on a character boundary.
fn clip(text: &str) -> &str {
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
