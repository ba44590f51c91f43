//! `assisters threads list|show|create|delete`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::api::Client;
use crate::api::client::ThreadQuery;
use crate::api::types::{
    Message, MessageStatus, THREAD_ASSISTANT_KEY, Thread, ThreadCreate, ToolCallRecord,
};

use super::ThreadsCommand;
use super::error::CliError;
use super::output::{Table, print_json, print_page, print_text, sanitize_line, sanitize_text};

/// Largest page the API serves.
pub const MAX_PAGE: u32 = 100;

/// Maximum pages read when fetching a whole list (100 000 items), so a server that keeps
/// saying `has_more` cannot loop the client forever.
pub const MAX_PAGES: u32 = 1000;

/// Runs one `threads` subcommand.
pub async fn run(command: &ThreadsCommand, client: &Client, json: bool) -> Result<(), CliError> {
    match command {
        ThreadsCommand::List { page, assistant } => {
            let query = ThreadQuery {
                limit: Some(page.limit),
                offset: Some(page.offset),
                assistant_id: assistant.clone(),
            };
            let list = client.list_threads(&query).await?;
            if json {
                return print_json(&list);
            }
            let mut table = Table::new(&["ID", "CREATED", "ASSISTANT", "METADATA"]);
            for thread in &list.data {
                table.row(vec![
                    thread.id.clone(),
                    thread.created_at.clone(),
                    assistant_of(thread),
                    other_metadata(thread),
                ]);
            }
            print_page(&table, &list, page.offset);
            Ok(())
        }
        ThreadsCommand::Show { id } => show(client, id, json).await,
        ThreadsCommand::Create {
            metadata,
            assistant,
        } => {
            let body = ThreadCreate {
                metadata: parse_metadata(metadata, assistant.as_deref())?,
            };
            let thread = client.create_thread(&body).await?;
            if json {
                return print_json(&thread);
            }
            print_text(&render_thread(&thread));
            Ok(())
        }
        ThreadsCommand::Delete { id } => {
            let deleted = client.delete_thread(id).await?;
            if json {
                return print_json(&deleted);
            }
            print_text(&format!("deleted {}\n", sanitize_line(&deleted.id)));
            Ok(())
        }
    }
}

/// JSON of `threads show`: the thread and every message, oldest first.
#[derive(Serialize)]
struct ThreadWithMessages<'a> {
    thread: &'a Thread,
    messages: &'a [Message],
}

async fn show(client: &Client, id: &str, json: bool) -> Result<(), CliError> {
    let thread = client.get_thread(id).await?;
    let messages = all_messages(client, id).await?;
    if json {
        return print_json(&ThreadWithMessages {
            thread: &thread,
            messages: &messages,
        });
    }
    let mut out = render_thread(&thread);
    for message in &messages {
        out.push('\n');
        out.push_str(&render_message(message));
    }
    print_text(&out);
    Ok(())
}

/// Reads every message of a thread, page by page.
pub async fn all_messages(client: &Client, thread_id: &str) -> Result<Vec<Message>, CliError> {
    let mut messages = Vec::new();
    for _ in 0..MAX_PAGES {
        let offset = u32::try_from(messages.len()).unwrap_or(u32::MAX);
        let page = client.list_messages(thread_id, MAX_PAGE, offset).await?;
        let count = page.data.len();
        messages.extend(page.data);
        if !page.has_more || count == 0 {
            break;
        }
    }
    Ok(messages)
}

fn render_thread(thread: &Thread) -> String {
    let mut out = format!(
        "thread {}  created {}\n",
        sanitize_line(&thread.id),
        sanitize_line(&thread.created_at)
    );
    for (key, value) in &thread.metadata {
        out.push_str(&format!(
            "  {}: {}\n",
            sanitize_line(key),
            sanitize_line(value)
        ));
    }
    out
}

/// Returns a message as a header line, its text, then one line per tool call.
pub fn render_message(message: &Message) -> String {
    let role = serde_json::to_value(message.role)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    let mut out = format!(
        "[{role}] {}  {}",
        sanitize_line(&message.id),
        sanitize_line(&message.created_at)
    );
    match message.status {
        MessageStatus::Completed => {}
        MessageStatus::Incomplete => out.push_str("  (incomplete)"),
        MessageStatus::RequiresAction => out.push_str("  (waiting for tool output)"),
        MessageStatus::Unknown => out.push_str("  (unknown status)"),
    }
    out.push('\n');
    for call in &message.tool_calls {
        out.push_str(&render_tool_call(call));
    }
    let text = sanitize_text(&message.content);
    if !text.is_empty() {
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn render_tool_call(call: &ToolCallRecord) -> String {
    let status = serde_json::to_value(call.status)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut line = format!(
        "  tool {} {}({}) {status}",
        sanitize_line(&call.id),
        sanitize_line(&call.name),
        sanitize_line(&call.arguments.to_string()),
    );
    if let Some(output) = &call.output {
        line.push_str(&format!(": {}", sanitize_line(output)));
    }
    line.push('\n');
    line
}

/// Parses `--metadata KEY=VALUE` flags, adding `assistant_id` for `--assistant`.
fn parse_metadata(
    entries: &[String],
    assistant: Option<&str>,
) -> Result<BTreeMap<String, String>, CliError> {
    let mut metadata = BTreeMap::new();
    for entry in entries {
        let Some((key, value)) = entry.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--metadata {entry:?} is not KEY=VALUE"
            )));
        };
        if key.trim().is_empty() {
            return Err(CliError::Usage(format!(
                "--metadata {entry:?} has an empty key"
            )));
        }
        metadata.insert(key.to_owned(), value.to_owned());
    }
    if let Some(id) = assistant {
        metadata.insert(THREAD_ASSISTANT_KEY.to_owned(), id.to_owned());
    }
    Ok(metadata)
}

fn assistant_of(thread: &Thread) -> String {
    thread
        .metadata
        .get(THREAD_ASSISTANT_KEY)
        .cloned()
        .unwrap_or_else(|| "-".to_owned())
}

fn other_metadata(thread: &Thread) -> String {
    let pairs: Vec<String> = thread
        .metadata
        .iter()
        .filter(|(key, _)| key.as_str() != THREAD_ASSISTANT_KEY)
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    pairs.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_flags_parse() {
        let entries = vec!["topic=billing".to_owned(), "empty=".to_owned()];
        let metadata = parse_metadata(&entries, Some("asst_1")).unwrap_or_default();
        assert_eq!(metadata.get("topic").map(String::as_str), Some("billing"));
        assert_eq!(metadata.get("empty").map(String::as_str), Some(""));
        assert_eq!(
            metadata.get("assistant_id").map(String::as_str),
            Some("asst_1")
        );
    }

    #[test]
    fn metadata_without_equals_is_usage_error() {
        let result = parse_metadata(&["topic".to_owned()], None);
        assert!(matches!(result, Err(CliError::Usage(message)) if message.contains("KEY=VALUE")));
    }
}
