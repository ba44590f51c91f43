//! The `scripted` engine: deterministic replies from a [`Script`].
//!
//! A round goes like this:
//!
//! 1. When the last message of the history is an assistant message whose tool calls
//!    all have outputs, the reply continues: the matching rule's `after_tools` text,
//!    or one sentence per call: from `tool_replies` for that tool, else `tool_reply`,
//!    or `tool_failed_reply` when the call failed.
//! 2. Otherwise, when `call_named_tools` is on and the latest user message names one
//!    of the assistant's tools (as a whole word), the engine calls each named tool
//!    with the message's `key=value` pairs as string arguments.
//! 3. Otherwise the first matching rule gives the text and tool calls.
//!
//! Text is streamed word by word (each piece carries the whitespace before it), with
//! `token_delay` between pieces.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::script::{Placeholders, Script, render};
use super::{Engine, EngineEvent, EngineRequest, EngineStream};
use crate::api::types::{Message, Role, ToolCallRecord, ToolCallStatus};

/// The name `--engine` selects this engine by.
pub const NAME: &str = "scripted";

/// Deterministic engine driven by a script.
pub struct Scripted {
    script: Script,
    token_delay: Duration,
}

impl Scripted {
    pub fn new(script: Script, token_delay: Duration) -> Scripted {
        Scripted {
            script,
            token_delay,
        }
    }

    /// Returns the events of one round, without delays.
    pub fn plan(&self, request: &EngineRequest) -> Vec<EngineEvent> {
        let user = latest_user_text(&request.messages);
        let values = |tool: &'static str| Placeholders {
            message: user,
            assistant: &request.assistant.name,
            tool,
            output: "",
        };
        let mut events = Vec::new();
        if let Some(calls) = finished_tool_calls(&request.messages) {
            let text = self.after_tools_text(user, &request.assistant.name, calls);
            events.extend(split_text(&text).into_iter().map(EngineEvent::Delta));
        } else if let Some(calls) = self.named_tool_calls(request, user) {
            events.extend(calls);
        } else {
            match self.script.find(user) {
                Some(rule) => {
                    let text = render(&rule.reply, &values(""));
                    events.extend(split_text(&text).into_iter().map(EngineEvent::Delta));
                    events.extend(rule.tool_calls.iter().map(|call| EngineEvent::ToolCall {
                        name: call.name.clone(),
                        arguments: call.arguments.clone(),
                    }));
                }
                None => {
                    let text = render(&self.script.no_match_reply, &values(""));
                    events.extend(split_text(&text).into_iter().map(EngineEvent::Delta));
                }
            }
        }
        events.push(EngineEvent::Done);
        events
    }

    fn after_tools_text(&self, user: &str, assistant: &str, calls: &[ToolCallRecord]) -> String {
        let template = self
            .script
            .find(user)
            .and_then(|rule| rule.after_tools.as_ref());
        if let Some(template) = template {
            let tools = calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>();
            let outputs = calls
                .iter()
                .map(|c| c.output.as_deref().unwrap_or_default())
                .collect::<Vec<_>>();
            let values = Placeholders {
                message: user,
                assistant,
                tool: &tools.join(", "),
                output: &outputs.join("\n\n"),
            };
            return render(template, &values);
        }
        let sentences = calls.iter().map(|call| {
            let template = if call.status == ToolCallStatus::Failed {
                &self.script.tool_failed_reply
            } else {
                self.script
                    .tool_replies
                    .get(&call.name)
                    .unwrap_or(&self.script.tool_reply)
            };
            let values = Placeholders {
                message: user,
                assistant,
                tool: &call.name,
                output: call.output.as_deref().unwrap_or_default(),
            };
            render(template, &values)
        });
        sentences.collect::<Vec<_>>().join("\n\n")
    }

    fn named_tool_calls(&self, request: &EngineRequest, user: &str) -> Option<Vec<EngineEvent>> {
        if !self.script.call_named_tools {
            return None;
        }
        let words: Vec<&str> = user
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .collect();
        let calls: Vec<EngineEvent> = request
            .assistant
            .tools
            .iter()
            .filter(|tool| words.contains(&tool.name()))
            .map(|tool| EngineEvent::ToolCall {
                name: tool.name().to_owned(),
                arguments: key_value_arguments(user),
            })
            .collect();
        (!calls.is_empty()).then_some(calls)
    }
}

impl Engine for Scripted {
    fn name(&self) -> &str {
        NAME
    }

    fn reply(&self, request: EngineRequest, cancel: CancellationToken) -> EngineStream {
        let events: VecDeque<EngineEvent> = self.plan(&request).into();
        let delay = self.token_delay;
        let pacing = Pacing::new(delay);
        let stream = futures::stream::unfold((events, pacing), move |(mut events, mut pacing)| {
            let cancel = cancel.clone();
            async move {
                let event = events.pop_front()?;
                if matches!(event, EngineEvent::Delta(_))
                    && let Some(due) = pacing.next_due()
                {
                    tokio::select! {
                        () = cancel.cancelled() => return None,
                        () = tokio::time::sleep_until(due) => {}
                    }
                }
                if cancel.is_cancelled() {
                    return None;
                }
                Some((event, (events, pacing)))
            }
        });
        Box::pin(stream)
    }
}

/// When each text piece of a reply is due: the first at once, then one every
/// `delay`, counted from the first piece. Deadlines rather than a sleep per piece keep
/// the average rate exact, because tokio rounds each sleep up to its 1 ms timer tick
/// and the rounding would otherwise add up.
struct Pacing {
    delay: Duration,
    start: Option<tokio::time::Instant>,
    pieces: u32,
}

impl Pacing {
    fn new(delay: Duration) -> Pacing {
        Pacing {
            delay,
            start: None,
            pieces: 0,
        }
    }

    /// Returns when the next piece is due, or `None` when it is due now.
    fn next_due(&mut self) -> Option<tokio::time::Instant> {
        if self.delay.is_zero() {
            return None;
        }
        let start = *self.start.get_or_insert_with(tokio::time::Instant::now);
        let index = self.pieces;
        self.pieces = self.pieces.saturating_add(1);
        (index > 0).then(|| start + self.delay * index)
    }
}

/// Returns the content of the latest user message, or "" when there is none.
fn latest_user_text(messages: &[Message]) -> &str {
    messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .unwrap_or_default()
}

/// Returns the tool calls of the last message when it is an assistant message whose
/// calls all have outputs: the reply continues after them.
fn finished_tool_calls(messages: &[Message]) -> Option<&[ToolCallRecord]> {
    let last = messages.last()?;
    let done = |c: &ToolCallRecord| {
        c.output.is_some() && matches!(c.status, ToolCallStatus::Completed | ToolCallStatus::Failed)
    };
    (last.role == Role::Assistant
        && !last.tool_calls.is_empty()
        && last.tool_calls.iter().all(done))
    .then_some(last.tool_calls.as_slice())
}

/// Builds an arguments object from the `key=value` pairs of a message. Values are
/// strings; `key="a b"` keeps spaces. Keys are letters, digits and `_`.
pub fn key_value_arguments(message: &str) -> Value {
    let mut arguments = Map::new();
    let mut rest = message;
    while let Some(eq) = rest.find('=') {
        let key_start = rest[..eq]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| {
                i + rest[i..].chars().next().map_or(1, char::len_utf8)
            });
        let key = &rest[key_start..eq];
        let after = &rest[eq + 1..];
        let (value, consumed) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], end + 2),
                None => (quoted, after.len()),
            },
            None => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (after[..end].trim_end_matches([',', '.', ';']), end)
            }
        };
        if !key.is_empty() {
            arguments.insert(key.to_owned(), Value::String(value.to_owned()));
        }
        rest = &after[consumed.min(after.len())..];
    }
    Value::Object(arguments)
}

/// Splits text into pieces that concatenate back to it: each piece is a run of
/// whitespace followed by a run of other characters.
pub fn split_text(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for ch in text.chars() {
        if ch.is_whitespace() && in_word {
            pieces.push(std::mem::take(&mut current));
            in_word = false;
        }
        if !ch.is_whitespace() {
            in_word = true;
        }
        current.push(ch);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
mod tests;
