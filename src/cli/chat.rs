//! `assisters chat`: send one message and stream the reply to stdout.
//!
//! The reply text goes to stdout as it arrives, one flush per delta, so it can be
//! piped. Everything else (the new thread's id, tool calls and their results) goes to
//! stderr. When the reply stops for a custom tool, the handler configured under
//! `[tools.NAME]` runs, its output is posted, and the stream is opened again.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use futures::StreamExt;

use crate::api::Client;
use crate::api::types::{
    ASSISTANT_PREFIX, Assistant, MessageCreate, PendingToolCall, StreamEvent, THREAD_ASSISTANT_KEY,
    ThreadCreate, ToolOutput,
};
use crate::config::Config;
use crate::tools::run_handler;

use super::ChatArgs;
use super::error::CliError;
use super::output::{Sanitizer, sanitize_line};
use super::threads::{MAX_PAGE, MAX_PAGES};

/// Maximum rounds of custom tool calls in one reply, so two misbehaving sides cannot
/// loop forever.
const MAX_TOOL_ROUNDS: usize = 16;

/// Maximum tool output shown on stderr, in characters.
const TOOL_OUTPUT_PREVIEW: usize = 200;

/// Runs `assisters chat`.
pub async fn run(
    args: &ChatArgs,
    client: &Client,
    config: &Config,
    config_path: Option<&Path>,
) -> Result<(), CliError> {
    let message = read_message(&args.message)?;
    let assistant = resolve_assistant(client, &args.assistant).await?;
    let thread_id = match &args.thread {
        Some(id) => id.clone(),
        None => {
            let mut body = ThreadCreate::default();
            body.metadata
                .insert(THREAD_ASSISTANT_KEY.to_owned(), assistant.id.clone());
            client.create_thread(&body).await?.id
        }
    };
    let posted = client
        .create_message(&thread_id, &MessageCreate::user(message))
        .await;
    if args.thread.is_none() {
        if let Err(err) = posted {
            // The new thread would stay empty, so it is deleted as well.
            if let Err(cleanup) = client.delete_thread(&thread_id).await {
                tracing::warn!(thread_id, error = %cleanup, "cannot delete the unused thread");
            }
            return Err(err.into());
        }
        let id = sanitize_line(&thread_id);
        eprintln!("thread: {id} (continue it with --thread {id})");
    }
    posted?;
    let tools = ToolRunner {
        config,
        config_path,
    };
    let mut printer = ReplyPrinter::new();
    for _ in 0..MAX_TOOL_ROUNDS {
        let pending = stream_once(client, &thread_id, &assistant.id, &mut printer).await?;
        if pending.is_empty() {
            return Ok(());
        }
        for call in &pending {
            let output = tools.run(call).await?;
            let body = ToolOutput {
                tool_call_id: call.id.clone(),
                output,
            };
            client.submit_tool_output(&thread_id, &body).await?;
        }
    }
    Err(CliError::Failed(
        "too_many_tool_rounds",
        format!("the reply asked for tools {MAX_TOOL_ROUNDS} times in a row; stopping"),
    ))
}

/// Returns the message text; `-` reads all of stdin, without its final line break.
fn read_message(argument: &str) -> Result<String, CliError> {
    let text = if argument == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|err| CliError::Usage(format!("cannot read the message from stdin: {err}")))?;
        text.strip_suffix('\n')
            .map(|rest| rest.strip_suffix('\r').unwrap_or(rest).to_owned())
            .unwrap_or(text)
    } else {
        argument.to_owned()
    };
    if text.trim().is_empty() {
        return Err(CliError::Usage(
            "the message is empty; pass the text to send, or - and the text on stdin".to_owned(),
        ));
    }
    Ok(text)
}

/// Finds an assistant by id, or else by exact name across all pages.
pub async fn resolve_assistant(client: &Client, wanted: &str) -> Result<Assistant, CliError> {
    if wanted.starts_with(ASSISTANT_PREFIX) {
        match client.get_assistant(wanted).await {
            Ok(assistant) => return Ok(assistant),
            Err(err) if err.status() == Some(404) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let mut matches = Vec::new();
    let mut offset = 0;
    for _ in 0..MAX_PAGES {
        let page = client.list_assistants(MAX_PAGE, offset).await?;
        let count = page.data.len();
        matches.extend(page.data.into_iter().filter(|a| a.name == wanted));
        offset = offset.saturating_add(u32::try_from(count).unwrap_or(u32::MAX));
        if !page.has_more || count == 0 {
            break;
        }
    }
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(CliError::Failed(
            "not_found",
            format!(
                "no assistant has the id or name {:?}; list them with `assisters assistants list`",
                sanitize_line(wanted)
            ),
        )),
        count => {
            let ids: Vec<String> = matches.iter().map(|a| sanitize_line(&a.id)).collect();
            Err(CliError::Usage(format!(
                "{count} assistants are named {:?}: {}; pass one id with --assistant",
                sanitize_line(wanted),
                ids.join(", ")
            )))
        }
    }
}

/// Streams one reply, printing it, and returns the custom tool calls it waits for.
async fn stream_once(
    client: &Client,
    thread_id: &str,
    assistant_id: &str,
    printer: &mut ReplyPrinter,
) -> Result<Vec<PendingToolCall>, CliError> {
    let mut stream = client.stream(thread_id, assistant_id, false).await?;
    let mut pending = Vec::new();
    printer.start();
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(event) => event,
            Err(err) => {
                printer.end_line();
                return Err(err.into());
            }
        };
        match event {
            StreamEvent::Delta { content, .. } => printer.text(&content),
            StreamEvent::ToolCall {
                name, arguments, ..
            } => {
                printer.end_line();
                eprintln!(
                    "[tool call] {}({})",
                    sanitize_line(&name),
                    sanitize_line(&arguments.to_string())
                );
            }
            StreamEvent::ToolResult {
                name,
                output,
                status,
                ..
            } => {
                let status = serde_json::to_value(status).unwrap_or_default();
                let status = status.as_str().unwrap_or("unknown");
                eprintln!(
                    "[tool result] {} {status}: {}",
                    sanitize_line(&name),
                    preview(&output)
                );
            }
            StreamEvent::RequiresAction { tool_calls, .. } => pending = tool_calls,
            StreamEvent::Final(message) => printer.final_text(&message.content),
            StreamEvent::Error(body) => {
                printer.end_line();
                return Err(crate::api::ApiError::from_body(200, body, None).into());
            }
            StreamEvent::Done => break,
        }
    }
    printer.end_line();
    Ok(pending)
}

fn preview(output: &str) -> String {
    let line = sanitize_line(output);
    if line.chars().count() <= TOOL_OUTPUT_PREVIEW {
        return line;
    }
    let mut cut: String = line.chars().take(TOOL_OUTPUT_PREVIEW).collect();
    cut.push('…');
    cut
}

/// Runs custom tool calls through the handlers in the config file.
struct ToolRunner<'a> {
    config: &'a Config,
    config_path: Option<&'a Path>,
}

impl ToolRunner<'_> {
    async fn run(&self, call: &PendingToolCall) -> Result<String, CliError> {
        let name = sanitize_line(&call.name);
        let Some(handler) = self.config.tools.get(&call.name) else {
            let file = self
                .config_path
                .map(|path| path.display().to_string())
                .unwrap_or_else(|| "config.toml".to_owned());
            return Err(CliError::Failed(
                "tool_not_configured",
                format!(
                    "the assistant called the custom tool {name:?}, which has no handler; \
                     add a [tools.{name}] table with command = [\"program\", \"arg\"] or \
                     url = \"http://…\" to {file}"
                ),
            ));
        };
        eprintln!("[tool run] {name} ({})", sanitize_line(&call.id));
        let output = run_handler(handler, call)
            .await
            .map_err(|err| CliError::Failed("tool_failed", format!("tool {name}: {err}")))?;
        eprintln!("[tool output] {name}: {}", preview(&output));
        Ok(output)
    }
}

/// Writes reply text to stdout as it arrives. On a terminal, control sequences are
/// removed; when piped, the text is written exactly as sent.
struct ReplyPrinter {
    sanitizer: Option<Sanitizer>,
    /// True once this stream has printed text.
    printed: bool,
    /// True when the last text printed did not end with a line break.
    open_line: bool,
}

impl ReplyPrinter {
    fn new() -> Self {
        let terminal = std::io::stdout().is_terminal();
        ReplyPrinter {
            sanitizer: terminal.then(Sanitizer::default),
            printed: false,
            open_line: false,
        }
    }

    fn start(&mut self) {
        self.printed = false;
    }

    fn text(&mut self, text: &str) {
        let safe = match &mut self.sanitizer {
            Some(sanitizer) => sanitizer.push(text),
            None => text.to_owned(),
        };
        if safe.is_empty() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(safe.as_bytes());
        let _ = stdout.flush();
        self.printed = true;
        self.open_line = !safe.ends_with('\n');
    }

    /// Prints the whole reply when the server sent it only in the final event.
    fn final_text(&mut self, text: &str) {
        if !self.printed {
            self.text(text);
        }
    }

    fn end_line(&mut self) {
        if self.open_line {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(b"\n");
            let _ = stdout.flush();
            self.open_line = false;
        }
    }
}
