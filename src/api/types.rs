//! The wire contract: every body the API sends or accepts, and the stream events.
//!
//! The server serialises these structs and the client parses them, so the two cannot
//! drift apart. Response types are lenient when parsing (unknown fields are ignored and
//! most fields have defaults) so that the client keeps working against a server that
//! sends more, or slightly less, than this project's own server.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Prefix of assistant ids.
pub const ASSISTANT_PREFIX: &str = "asst_";
/// Prefix of thread ids.
pub const THREAD_PREFIX: &str = "thread_";
/// Prefix of message ids.
pub const MESSAGE_PREFIX: &str = "msg_";
/// Prefix of tool call ids.
pub const CALL_PREFIX: &str = "call_";
/// Prefix of file ids.
pub const FILE_PREFIX: &str = "file_";

/// Names of the tools that the server runs itself.
pub const BUILTIN_TOOLS: [&str; 3] = ["knowledge_base", "code_interpreter", "web_search"];

/// Sampling settings of an assistant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
}

/// A tool an assistant may call: a built-in name or a custom function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Tool {
    Builtin(String),
    Function(FunctionTool),
}

impl Tool {
    /// Returns the tool's name, built-in or custom.
    pub fn name(&self) -> &str {
        match self {
            Tool::Builtin(name) => name,
            Tool::Function(function) => &function.name,
        }
    }
}

/// The `type` tag of a function tool, which is always `"function"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FunctionKind {
    #[default]
    #[serde(rename = "function")]
    Function,
}

/// A custom function tool, run by the client when the assistant calls it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionTool {
    #[serde(rename = "type", default)]
    pub kind: FunctionKind,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments object.
    #[serde(default = "empty_object_schema")]
    pub parameters: Value,
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

/// An assistant as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assistant {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub instructions: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub tools: Vec<Tool>,
    #[serde(default)]
    pub settings: Settings,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_ids: Vec<String>,
    /// RFC 3339 timestamp in UTC.
    #[serde(default)]
    pub created_at: String,
    /// RFC 3339 timestamp in UTC.
    #[serde(default)]
    pub updated_at: String,
}

/// Body of `POST /v1/assisters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssistantCreate {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_ids: Option<Vec<String>>,
}

/// Body of `POST /v1/assisters/{id}`: only the fields that are present change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssistantUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_ids: Option<Vec<String>>,
}

impl AssistantUpdate {
    /// Returns true when the update would change nothing.
    pub fn is_empty(&self) -> bool {
        self == &AssistantUpdate::default()
    }
}

/// One page of a list endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub has_more: bool,
}

/// Answer of every DELETE endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

/// Metadata key under which clients record the assistant a thread was created for.
pub const THREAD_ASSISTANT_KEY: &str = "assistant_id";

/// A conversation thread. Threads belong to no assistant; clients tag them through
/// `metadata.assistant_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    pub id: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Body of `POST /v1/threads`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadCreate {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// Author of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
    Tool,
    /// A role this client does not know; shown, never sent.
    #[serde(other)]
    Unknown,
}

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// Always `"file"`.
    #[serde(rename = "type", default = "file_kind")]
    pub kind: String,
    pub file_id: String,
}

fn file_kind() -> String {
    "file".to_owned()
}

/// `purpose` of a file uploaded for assistants and message attachments.
pub const PURPOSE_ASSISTANTS: &str = "assistants";
/// `purpose` of a file uploaded for the `knowledge_base` tool.
pub const PURPOSE_KNOWLEDGE_BASE: &str = "knowledge_base";
/// Every `purpose` an upload may have.
pub const FILE_PURPOSES: [&str; 2] = [PURPOSE_ASSISTANTS, PURPOSE_KNOWLEDGE_BASE];

/// An uploaded file, as `POST /v1/files` and `GET /v1/files/{id}` return it. The
/// text extracted from it is searchable by the `knowledge_base` tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct File {
    pub id: String,
    /// Always `"file"`.
    #[serde(default = "file_kind")]
    pub object: String,
    #[serde(default)]
    pub filename: String,
    /// `assistants` or `knowledge_base`.
    #[serde(default)]
    pub purpose: String,
    /// `text/plain`, `text/markdown` or `application/pdf`.
    #[serde(default)]
    pub content_type: String,
    /// Size of the uploaded file.
    #[serde(default)]
    pub bytes: u64,
    /// How many passages of its text the search index holds.
    #[serde(default)]
    pub passages: u64,
    /// RFC 3339 timestamp in UTC.
    #[serde(default)]
    pub created_at: String,
}

/// State of a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallStatus {
    /// A built-in tool that the server is running.
    InProgress,
    /// A custom function waiting for the client to post its output.
    RequiresAction,
    Completed,
    Failed,
    #[serde(other)]
    Unknown,
}

/// A tool call stored on an assistant message, so a reloaded history shows it exactly
/// as the stream did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    pub id: String,
    pub name: String,
    /// The arguments object the model produced.
    #[serde(default)]
    pub arguments: Value,
    pub status: ToolCallStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// State of a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    #[default]
    Completed,
    /// The reply was cut short (cancelled, or the server shut down mid-stream).
    Incomplete,
    /// The reply is waiting for the outputs of custom tool calls.
    RequiresAction,
    #[serde(other)]
    Unknown,
}

/// A message in a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thread_id: String,
    pub role: Role,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallRecord>,
    #[serde(default)]
    pub status: MessageStatus,
}

/// Body of `POST /v1/threads/{id}/messages`. With `assistant_id` the server also runs
/// the assistant and answers with its reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageCreate {
    #[serde(default = "user_role")]
    pub role: Role,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_id: Option<String>,
}

fn user_role() -> Role {
    Role::User
}

impl MessageCreate {
    /// Builds a user message with no attachments that does not run an assistant.
    pub fn user(content: impl Into<String>) -> Self {
        MessageCreate {
            role: Role::User,
            content: content.into(),
            attachments: Vec::new(),
            assistant_id: None,
        }
    }
}

/// Body of `POST /v1/threads/{id}/tool_outputs`: the output of one custom tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    pub tool_call_id: String,
    pub output: String,
}

/// The body of an error response, inside its `{"error": …}` envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// The `{"error": …}` envelope of every error response and error stream event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// A custom tool call that the client must run, listed by a `requires_action` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingToolCall {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub arguments: Value,
}

/// One event of `GET /v1/threads/{id}/messages/stream`.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A piece of reply text, to be appended exactly as sent.
    Delta { id: String, content: String },
    /// The tool call a reply makes.
    ToolCall {
        id: String,
        message_id: String,
        name: String,
        arguments: Value,
        status: ToolCallStatus,
    },
    /// The output of a tool call.
    ToolResult {
        tool_call_id: String,
        name: String,
        output: String,
        status: ToolCallStatus,
    },
    /// The reply waits for the outputs of these custom tool calls.
    RequiresAction {
        message_id: String,
        tool_calls: Vec<PendingToolCall>,
    },
    /// The finished reply, whole.
    Final(Message),
    /// The run failed; the stream ends after this.
    Error(ErrorBody),
    /// `data: [DONE]`, the end of every stream.
    Done,
}

/// Why a `data:` payload could not be turned into a [`StreamEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventParseError {
    /// The payload is not JSON, or a known event lacks a field.
    Invalid(String),
    /// A well-formed event of a type this client does not know; skip it.
    UnknownType(String),
}

impl StreamEvent {
    /// Parses the data of one server-sent event.
    pub fn parse(data: &str) -> Result<StreamEvent, EventParseError> {
        if data.trim() == "[DONE]" {
            return Ok(StreamEvent::Done);
        }
        let value: Value =
            serde_json::from_str(data).map_err(|err| EventParseError::Invalid(err.to_string()))?;
        let invalid = |err: serde_json::Error| EventParseError::Invalid(err.to_string());
        if let Some(error) = value.get("error") {
            let body = serde_json::from_value(error.clone()).map_err(invalid)?;
            return Ok(StreamEvent::Error(body));
        }
        match value.get("type").and_then(Value::as_str) {
            Some("tool_call") => {
                let raw: RawToolCall = serde_json::from_value(value).map_err(invalid)?;
                Ok(StreamEvent::ToolCall {
                    id: raw.id,
                    message_id: raw.message_id,
                    name: raw.name,
                    arguments: raw.arguments,
                    status: raw.status,
                })
            }
            Some("tool_result") => {
                let raw: RawToolResult = serde_json::from_value(value).map_err(invalid)?;
                Ok(StreamEvent::ToolResult {
                    tool_call_id: raw.tool_call_id,
                    name: raw.name,
                    output: raw.output,
                    status: raw.status,
                })
            }
            Some("requires_action") => {
                let raw: RawRequiresAction = serde_json::from_value(value).map_err(invalid)?;
                Ok(StreamEvent::RequiresAction {
                    message_id: raw.message_id,
                    tool_calls: raw.tool_calls,
                })
            }
            Some(other) => Err(EventParseError::UnknownType(other.to_owned())),
            None => match value.get("delta").and_then(Value::as_bool) {
                Some(true) => {
                    let raw: RawDelta = serde_json::from_value(value).map_err(invalid)?;
                    Ok(StreamEvent::Delta {
                        id: raw.id,
                        content: raw.content,
                    })
                }
                Some(false) => Ok(StreamEvent::Final(
                    serde_json::from_value(value).map_err(invalid)?,
                )),
                None => Err(EventParseError::Invalid(
                    "event has neither `type`, `delta` nor `error`".to_owned(),
                )),
            },
        }
    }

    /// Serialises the event as the data of one server-sent event.
    pub fn to_data(&self) -> String {
        let value = match self {
            StreamEvent::Done => return "[DONE]".to_owned(),
            StreamEvent::Delta { id, content } => serde_json::json!({
                "id": id, "role": "assistant", "content": content, "delta": true,
            }),
            StreamEvent::ToolCall {
                id,
                message_id,
                name,
                arguments,
                status,
            } => serde_json::json!({
                "type": "tool_call", "id": id, "message_id": message_id, "name": name,
                "arguments": arguments, "status": status,
            }),
            StreamEvent::ToolResult {
                tool_call_id,
                name,
                output,
                status,
            } => serde_json::json!({
                "type": "tool_result", "tool_call_id": tool_call_id, "name": name,
                "output": output, "status": status,
            }),
            StreamEvent::RequiresAction {
                message_id,
                tool_calls,
            } => serde_json::json!({
                "type": "requires_action", "message_id": message_id, "tool_calls": tool_calls,
            }),
            StreamEvent::Final(message) => {
                let mut value = serde_json::to_value(message).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut value {
                    map.insert("delta".to_owned(), Value::Bool(false));
                }
                value
            }
            StreamEvent::Error(body) => serde_json::json!({ "error": body }),
        };
        value.to_string()
    }
}

#[derive(Deserialize)]
struct RawDelta {
    #[serde(default)]
    id: String,
    #[serde(default)]
    content: String,
}

#[derive(Deserialize)]
struct RawToolCall {
    id: String,
    #[serde(default)]
    message_id: String,
    name: String,
    #[serde(default)]
    arguments: Value,
    #[serde(default = "in_progress")]
    status: ToolCallStatus,
}

fn in_progress() -> ToolCallStatus {
    ToolCallStatus::InProgress
}

#[derive(Deserialize)]
struct RawToolResult {
    tool_call_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    output: String,
    #[serde(default = "completed")]
    status: ToolCallStatus,
}

fn completed() -> ToolCallStatus {
    ToolCallStatus::Completed
}

#[derive(Deserialize)]
struct RawRequiresAction {
    #[serde(default)]
    message_id: String,
    tool_calls: Vec<PendingToolCall>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(event: StreamEvent) {
        let data = event.to_data();
        assert_eq!(StreamEvent::parse(&data), Ok(event), "data: {data}");
    }

    #[test]
    fn stream_events_round_trip() {
        round_trip(StreamEvent::Done);
        round_trip(StreamEvent::Delta {
            id: "msg_1".into(),
            content: " héllo\n".into(),
        });
        round_trip(StreamEvent::ToolCall {
            id: "call_1".into(),
            message_id: "msg_1".into(),
            name: "lookup_user".into(),
            arguments: serde_json::json!({"user_id": "u1"}),
            status: ToolCallStatus::RequiresAction,
        });
        round_trip(StreamEvent::ToolResult {
            tool_call_id: "call_1".into(),
            name: "web_search".into(),
            output: "not configured".into(),
            status: ToolCallStatus::Failed,
        });
        round_trip(StreamEvent::RequiresAction {
            message_id: "msg_1".into(),
            tool_calls: vec![PendingToolCall {
                id: "call_1".into(),
                name: "lookup_user".into(),
                arguments: serde_json::json!({}),
            }],
        });
        round_trip(StreamEvent::Error(ErrorBody {
            code: "server_error".into(),
            message: "shutting down".into(),
            param: None,
            kind: "api_error".into(),
        }));
    }

    #[test]
    fn delta_matches_documented_shape() {
        let event = StreamEvent::parse(
            r#"{"id":"msg_1","role":"assistant","content":"We're","delta":true}"#,
        );
        assert_eq!(
            event,
            Ok(StreamEvent::Delta {
                id: "msg_1".into(),
                content: "We're".into()
            })
        );
    }

    #[test]
    fn final_event_carries_whole_message() {
        let event = StreamEvent::parse(
            r#"{"id":"msg_1","role":"assistant","content":"Hi there","delta":false,"extra":1}"#,
        );
        let Ok(StreamEvent::Final(message)) = event else {
            panic!("expected a final event, got {event:?}");
        };
        assert_eq!(message.content, "Hi there");
        assert_eq!(message.role, Role::Assistant);
        assert_eq!(message.status, MessageStatus::Completed);
    }

    #[test]
    fn unknown_event_type_is_reported() {
        assert_eq!(
            StreamEvent::parse(r#"{"type":"usage","tokens":3}"#),
            Err(EventParseError::UnknownType("usage".into()))
        );
    }

    #[test]
    fn tools_parse_builtin_and_function() {
        let tools: Vec<Tool> = serde_json::from_str(
            r#"["web_search", {"type":"function","name":"lookup_user","parameters":{"type":"object"}}]"#,
        )
        .unwrap_or_default();
        assert_eq!(tools.len(), 2);
        assert_eq!(tools[0], Tool::Builtin("web_search".into()));
        assert_eq!(tools[1].name(), "lookup_user");
    }

    #[test]
    fn unknown_role_parses() {
        let message: Result<Message, _> =
            serde_json::from_str(r#"{"id":"msg_1","role":"moderator","content":"x"}"#);
        assert_eq!(message.map(|m| m.role).ok(), Some(Role::Unknown));
    }
}
