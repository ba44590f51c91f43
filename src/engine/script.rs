//! Reply scripts of the scripted engine, read from TOML or JSON.
//!
//! A script is a list of rules tried in order against the latest user message; the
//! first match gives the reply text and/or tool calls. A rule matches with `pattern`
//! (a regular expression in the syntax of the `regex` crate; add `(?i)` for case
//! folding) or `contains` (a substring, compared case-insensitively); a rule with
//! neither matches every message. Reply texts may use these placeholders:
//!
//! - `{message}`: the user's message; `{quoted}`: the same with each line as `> …`;
//! - `{assistant}`: the assistant's name;
//! - `{tool}` and `{output}`: in texts used after tool calls, the tool names and
//!   outputs, joined by `, ` and by a blank line.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The script used when `--script` is not given.
const BUILTIN_SCRIPT: &str = include_str!("../../assets/default-script.toml");

/// A script file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read script file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid script file {path}: {problem}")]
    Invalid { path: String, problem: String },
}

/// A tool call a rule makes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptToolCall {
    pub name: String,
    #[serde(default = "empty_object")]
    pub arguments: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    pattern: Option<String>,
    contains: Option<String>,
    reply: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ScriptToolCall>,
    after_tools: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    #[serde(default = "default_true")]
    call_named_tools: bool,
    #[serde(default = "default_tool_reply")]
    tool_reply: String,
    #[serde(default = "default_tool_failed_reply")]
    tool_failed_reply: String,
    #[serde(default)]
    no_match_reply: Option<String>,
    #[serde(default)]
    tool_replies: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

fn default_true() -> bool {
    true
}

fn default_tool_reply() -> String {
    "The {tool} tool returned: {output}".to_owned()
}

fn default_tool_failed_reply() -> String {
    "The {tool} tool failed: {output}".to_owned()
}

/// How a rule recognises a message.
#[derive(Debug, Clone)]
pub enum Matcher {
    Pattern(Regex),
    /// Lowercased substring.
    Contains(String),
    Any,
}

/// One rule of a script.
#[derive(Debug, Clone)]
pub struct Rule {
    pub matcher: Matcher,
    pub reply: String,
    pub tool_calls: Vec<ScriptToolCall>,
    /// Reply once the tool calls have outputs; the script's `tool_reply` when unset.
    pub after_tools: Option<String>,
}

impl Rule {
    /// Returns true when the rule applies to `message`.
    pub fn matches(&self, message: &str) -> bool {
        match &self.matcher {
            Matcher::Pattern(regex) => regex.is_match(message),
            Matcher::Contains(needle) => message.to_lowercase().contains(needle),
            Matcher::Any => true,
        }
    }
}

/// A parsed, checked script.
#[derive(Debug, Clone)]
pub struct Script {
    /// When the message names one of the assistant's tools, call it with the
    /// message's `key=value` pairs as arguments, before trying the rules.
    pub call_named_tools: bool,
    /// Sentence for each completed tool call, with `{tool}` and `{output}`.
    pub tool_reply: String,
    /// Sentence for each failed tool call, with `{tool}` and `{output}`.
    pub tool_failed_reply: String,
    /// Reply when no rule matches.
    pub no_match_reply: String,
    /// Sentence for each completed call of the named tool, used instead of
    /// `tool_reply`; with `{tool}` and `{output}`.
    pub tool_replies: BTreeMap<String, String>,
    pub rules: Vec<Rule>,
}

impl Script {
    /// Returns the built-in default script.
    pub fn builtin() -> Result<Script, ScriptError> {
        Script::parse(BUILTIN_SCRIPT, "the built-in script", false)
    }

    /// Reads a script file: JSON when the name ends in `.json`, TOML otherwise.
    pub fn load(path: &Path) -> Result<Script, ScriptError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            path: shown.clone(),
            source,
        })?;
        let is_json = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
        Script::parse(&text, &shown, is_json)
    }

    /// Parses script text; `path` names it in errors.
    pub fn parse(text: &str, path: &str, is_json: bool) -> Result<Script, ScriptError> {
        let invalid = |problem: String| ScriptError::Invalid {
            path: path.to_owned(),
            problem,
        };
        let raw: RawScript = if is_json {
            serde_json::from_str(text).map_err(|err| invalid(err.to_string()))?
        } else {
            toml::from_str(text).map_err(|err| invalid(err.to_string().trim_end().to_owned()))?
        };
        let rules = raw
            .rules
            .into_iter()
            .enumerate()
            .map(|(index, rule)| check_rule(index + 1, rule))
            .collect::<Result<Vec<_>, String>>()
            .map_err(invalid)?;
        Ok(Script {
            call_named_tools: raw.call_named_tools,
            tool_reply: raw.tool_reply,
            tool_failed_reply: raw.tool_failed_reply,
            no_match_reply: raw
                .no_match_reply
                .unwrap_or_else(|| "No rule of the reply script matches this message.".into()),
            tool_replies: raw.tool_replies,
            rules,
        })
    }

    /// Returns the first rule that applies to `message`.
    pub fn find(&self, message: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.matches(message))
    }
}

/// Checks one rule; `number` counts from 1 as people read the file.
fn check_rule(number: usize, raw: RawRule) -> Result<Rule, String> {
    let matcher = match (raw.pattern, raw.contains) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "rule {number} sets both pattern and contains; keep one"
            ));
        }
        (Some(pattern), None) => Matcher::Pattern(
            Regex::new(&pattern)
                .map_err(|err| format!("rule {number} has an invalid pattern: {err}"))?,
        ),
        (None, Some(needle)) if needle.is_empty() => {
            return Err(format!(
                "rule {number} has an empty contains; remove it to match everything"
            ));
        }
        (None, Some(needle)) => Matcher::Contains(needle.to_lowercase()),
        (None, None) => Matcher::Any,
    };
    if raw.reply.is_none() && raw.tool_calls.is_empty() {
        return Err(format!("rule {number} has neither reply nor tool_calls"));
    }
    for call in &raw.tool_calls {
        if call.name.is_empty() {
            return Err(format!("rule {number} has a tool call without a name"));
        }
        if !call.arguments.is_object() {
            return Err(format!(
                "rule {number}: the arguments of tool call {} must be a table/object",
                call.name
            ));
        }
    }
    Ok(Rule {
        matcher,
        reply: raw.reply.unwrap_or_default(),
        tool_calls: raw.tool_calls,
        after_tools: raw.after_tools,
    })
}

/// Values for the placeholders of a reply text.
#[derive(Debug, Default)]
pub struct Placeholders<'a> {
    pub message: &'a str,
    pub assistant: &'a str,
    pub tool: &'a str,
    pub output: &'a str,
}

/// Fills the placeholders of `template` in one pass, so placeholder-like text
/// inside the values stays as it is. Unknown `{…}` text is kept too.
pub fn render(template: &str, values: &Placeholders<'_>) -> String {
    let quoted = values
        .message
        .lines()
        .map(|line| format!("> {line}").trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    let names: [(&str, &str); 5] = [
        ("{message}", values.message),
        ("{quoted}", &quoted),
        ("{assistant}", values.assistant),
        ("{tool}", values.tool),
        ("{output}", values.output),
    ];
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        match names.iter().find(|(name, _)| rest.starts_with(name)) {
            Some((name, value)) => {
                out.push_str(value);
                rest = &rest[name.len()..];
            }
            None => {
                out.push('{');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
