//! The built-in tools the server runs itself: `knowledge_base` (search the uploaded
//! documents), `code_interpreter` (run Python in a confined child process) and
//! `web_search` (a SearXNG-compatible endpoint), plus the reading of uploaded
//! documents they rely on. `server::builtin` dispatches calls to them.
//!
//! Some calls are made by the server itself at the start of a turn, so that engines
//! without function calling (the scripted engine, the embedded model) use the tools
//! too: see [`automatic_calls`].

pub mod documents;
pub mod knowledge;
pub mod python;
pub mod search;

use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Value, json};

use crate::api::types::{Assistant, Message, Role};

/// How the server's built-in tools are set up.
#[derive(Debug, Clone)]
pub struct ToolSettings {
    /// Whether `code_interpreter` may run code.
    pub allow_code: bool,
    pub code_limits: python::CodeLimits,
    /// The SearXNG-compatible JSON endpoint of `web_search`.
    pub search_url: Option<String>,
    pub http: reqwest::Client,
}

impl Default for ToolSettings {
    fn default() -> Self {
        ToolSettings {
            allow_code: false,
            code_limits: python::CodeLimits::default(),
            search_url: None,
            http: search::client(),
        }
    }
}

/// Returns true when the assistant lists the built-in tool `name`.
pub fn has_tool(assistant: &Assistant, name: &str) -> bool {
    assistant.tools.iter().any(|tool| tool.name() == name)
}

/// The tool calls the server makes before the engine's first round of a turn:
///
/// - `knowledge_base` with the user's message as the query, when the assistant has
///   the tool and `has_files` (it or the thread has at least one file);
/// - `code_interpreter` with the first fenced `python` block of the user's message,
///   when the message asks to run it, the assistant has the tool and the engine does
///   not call tools through function calling itself.
pub fn automatic_calls(
    assistant: &Assistant,
    history: &[Message],
    has_files: bool,
    engine_calls_tools: bool,
) -> Vec<(String, Value)> {
    let Some(user) = history.iter().rev().find(|m| m.role == Role::User) else {
        return Vec::new();
    };
    let mut calls = Vec::new();
    if has_files && has_tool(assistant, "knowledge_base") {
        calls.push(("knowledge_base".to_owned(), json!({"query": user.content})));
    }
    if !engine_calls_tools
        && has_tool(assistant, "code_interpreter")
        && let Some(code) = python_to_run(&user.content)
    {
        calls.push(("code_interpreter".to_owned(), json!({"code": code})));
    }
    calls
}

/// Returns the first fenced Python block of `text` when the text outside the block
/// asks to run it ("run", "execute", "evaluate").
pub fn python_to_run(text: &str) -> Option<String> {
    static FENCE: OnceLock<Option<Regex>> = OnceLock::new();
    static ASK: OnceLock<Option<Regex>> = OnceLock::new();
    let fence = FENCE
        .get_or_init(|| Regex::new(r"(?s)```(?:python|py|python3)[ \t]*\r?\n(.*?)```").ok())
        .as_ref()?;
    let ask = ASK
        .get_or_init(|| Regex::new(r"(?i)\b(run|execute|evaluate|exec)\b").ok())
        .as_ref()?;
    let block = fence.captures(text)?;
    let whole = block.get(0)?;
    let outside = format!("{} {}", &text[..whole.start()], &text[whole.end()..]);
    if !ask.is_match(&outside) {
        return None;
    }
    Some(block.get(1)?.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_blocks_run_only_when_asked() {
        let asked = "Please run this:\n```python\nprint(6 * 7)\n```";
        assert_eq!(python_to_run(asked).as_deref(), Some("print(6 * 7)\n"));
        let shown = "What does this do?\n```python\nprint('run')\n```";
        assert_eq!(python_to_run(shown), None);
        assert_eq!(python_to_run("run ```rust\nfn main(){}\n```"), None);
        assert_eq!(python_to_run("just run it"), None);
    }
}
