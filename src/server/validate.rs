//! Checks of request bodies against the field limits in `docs/api.md`.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::body::{Fields, checked_string, json_type};
use super::error::ApiFailure;
use crate::api::types::{
    Attachment, BUILTIN_TOOLS, FILE_PREFIX, FunctionKind, FunctionTool, Settings, Tool,
};

pub const MAX_NAME: usize = 256;
pub const MAX_DESCRIPTION: usize = 4096;
pub const MAX_INSTRUCTIONS: usize = 32_768;
pub const MAX_MODEL: usize = 128;
pub const MAX_TOOLS: usize = 32;
pub const MAX_TOOL_NAME: usize = 64;
pub const MAX_PARAMETERS_BYTES: usize = 16_384;
pub const MAX_FILE_IDS: usize = 20;
pub const MAX_FILE_ID: usize = 64;
pub const MAX_METADATA_ENTRIES: usize = 16;
pub const MAX_METADATA_KEY: usize = 64;
pub const MAX_METADATA_VALUE: usize = 512;
pub const MAX_CONTENT: usize = 65_536;
pub const MAX_ATTACHMENTS: usize = 10;
pub const MAX_TOOL_OUTPUT: usize = 65_536;
/// Maximum length of an id in a body or query field.
pub const MAX_ID: usize = 128;

const ASSISTANT_FIELDS: &[&str] = &[
    "name",
    "description",
    "instructions",
    "model",
    "tools",
    "settings",
    "file_ids",
];

/// The checked fields of an assistant create or update body.
#[derive(Debug, Default)]
pub struct AssistantInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub instructions: Option<String>,
    pub model: Option<String>,
    pub tools: Option<Vec<Tool>>,
    pub settings: Option<Settings>,
    pub file_ids: Option<Vec<String>>,
}

/// Checks an assistant body; `require_name` for create.
pub fn assistant_input(
    mut fields: Fields,
    require_name: bool,
) -> Result<AssistantInput, ApiFailure> {
    fields.reject_unknown(ASSISTANT_FIELDS)?;
    let name = if require_name {
        Some(fields.required_string("name", MAX_NAME)?)
    } else {
        match fields.string("name", MAX_NAME)? {
            Some(name) if name.trim().is_empty() => {
                return Err(ApiFailure::invalid("name", "name must not be empty"));
            }
            name => name,
        }
    };
    Ok(AssistantInput {
        name,
        description: fields.string("description", MAX_DESCRIPTION)?,
        instructions: fields.string("instructions", MAX_INSTRUCTIONS)?,
        model: fields.string("model", MAX_MODEL)?,
        tools: fields.take("tools").map(tools).transpose()?,
        settings: fields.take("settings").map(settings).transpose()?,
        file_ids: fields.take("file_ids").map(file_ids).transpose()?,
    })
}

fn array(param: &str, value: Value, max: usize) -> Result<Vec<Value>, ApiFailure> {
    let Value::Array(items) = value else {
        return Err(ApiFailure::invalid(
            param,
            format!("{param} must be an array, not {}", json_type(&value)),
        ));
    };
    if items.len() > max {
        return Err(ApiFailure::invalid(
            param,
            format!("{param} has {} entries; the maximum is {max}", items.len()),
        ));
    }
    Ok(items)
}

fn object(param: &str, value: Value) -> Result<Fields, ApiFailure> {
    match value {
        Value::Object(map) => Ok(Fields::new(map)),
        other => Err(ApiFailure::invalid(
            param,
            format!("{param} must be an object, not {}", json_type(&other)),
        )),
    }
}

fn tools(value: Value) -> Result<Vec<Tool>, ApiFailure> {
    let items = array("tools", value, MAX_TOOLS)?;
    let mut seen = HashSet::new();
    let mut tools = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let param = format!("tools[{index}]");
        let tool = match item {
            Value::String(name) if BUILTIN_TOOLS.contains(&name.as_str()) => Tool::Builtin(name),
            Value::String(name) => {
                return Err(ApiFailure::invalid(
                    &param,
                    format!(
                        "unknown built-in tool {name:?}; built-in tools are {}, or give a \
                         function object",
                        BUILTIN_TOOLS.join(", ")
                    ),
                ));
            }
            other => Tool::Function(function_tool(&param, other)?),
        };
        if !seen.insert(tool.name().to_owned()) {
            return Err(ApiFailure::invalid(
                &param,
                format!("tool {:?} is listed twice", tool.name()),
            ));
        }
        tools.push(tool);
    }
    Ok(tools)
}

fn function_tool(param: &str, value: Value) -> Result<FunctionTool, ApiFailure> {
    let mut fields = object(param, value)?;
    fields
        .reject_unknown(&["type", "name", "description", "parameters"])
        .map_err(|err| prefixed(param, err))?;
    let kind_param = format!("{param}.type");
    match fields
        .string("type", 16)
        .map_err(|err| prefixed(param, err))?
    {
        None => {}
        Some(kind) if kind == "function" => {}
        Some(kind) => {
            return Err(ApiFailure::invalid(
                &kind_param,
                format!("{kind_param} must be \"function\", not {kind:?}"),
            ));
        }
    }
    let name_param = format!("{param}.name");
    let name = fields
        .required_string("name", MAX_TOOL_NAME)
        .map_err(|err| prefixed(param, err))?;
    let valid_name = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name || BUILTIN_TOOLS.contains(&name.as_str()) {
        return Err(ApiFailure::invalid(
            &name_param,
            format!(
                "{name_param} {name:?} must use only letters, digits, _ and -, and must not be \
                 a built-in tool name"
            ),
        ));
    }
    let description = fields
        .string("description", MAX_DESCRIPTION)
        .map_err(|err| prefixed(param, err))?
        .unwrap_or_default();
    let parameters = match fields.take("parameters") {
        None => serde_json::json!({"type": "object", "properties": {}}),
        Some(parameters) => schema(&format!("{param}.parameters"), parameters)?,
    };
    Ok(FunctionTool {
        kind: FunctionKind::Function,
        name,
        description,
        parameters,
    })
}

fn schema(param: &str, value: Value) -> Result<Value, ApiFailure> {
    if !value.is_object() {
        return Err(ApiFailure::invalid(
            param,
            format!(
                "{param} must be a JSON Schema object, not {}",
                json_type(&value)
            ),
        ));
    }
    let size = value.to_string().len();
    if size > MAX_PARAMETERS_BYTES {
        return Err(ApiFailure::invalid(
            param,
            format!("{param} is {size} bytes; the maximum is {MAX_PARAMETERS_BYTES}"),
        ));
    }
    Ok(value)
}

/// Rewrites a failure about field `x` of a nested object into one about `param.x`.
fn prefixed(param: &str, mut failure: ApiFailure) -> ApiFailure {
    if let Some(inner) = failure.body.param.take() {
        let full = format!("{param}.{inner}");
        failure.body.message = failure.body.message.replacen(&inner, &full, 1);
        failure.body.param = Some(full);
    }
    failure
}

fn settings(value: Value) -> Result<Settings, ApiFailure> {
    let mut fields = object("settings", value)?;
    fields
        .reject_unknown(&["temperature", "top_p"])
        .map_err(|err| prefixed("settings", err))?;
    Ok(Settings {
        temperature: number(&mut fields, "settings.temperature", "temperature", 2.0)?,
        top_p: number(&mut fields, "settings.top_p", "top_p", 1.0)?,
    })
}

fn number(
    fields: &mut Fields,
    param: &str,
    key: &str,
    max: f64,
) -> Result<Option<f64>, ApiFailure> {
    let Some(value) = fields.take(key) else {
        return Ok(None);
    };
    match value.as_f64() {
        Some(number) if (0.0..=max).contains(&number) => Ok(Some(number)),
        Some(number) => Err(ApiFailure::invalid(
            param,
            format!("{param} must be from 0 to {max}, got {number}"),
        )),
        None => Err(ApiFailure::invalid(
            param,
            format!("{param} must be a number, not {}", json_type(&value)),
        )),
    }
}

fn file_id(param: &str, value: Value) -> Result<String, ApiFailure> {
    let id = checked_string(param, value, MAX_FILE_ID)?;
    if !id.starts_with(FILE_PREFIX) {
        return Err(ApiFailure::invalid(
            param,
            format!("{param} must be a file id starting with {FILE_PREFIX:?}, got {id:?}"),
        ));
    }
    Ok(id)
}

fn file_ids(value: Value) -> Result<Vec<String>, ApiFailure> {
    let items = array("file_ids", value, MAX_FILE_IDS)?;
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| file_id(&format!("file_ids[{index}]"), item))
        .collect()
}

/// Checks thread `metadata`: at most 16 string values with bounded keys and values.
pub fn metadata(value: Value) -> Result<BTreeMap<String, String>, ApiFailure> {
    let Value::Object(map) = value else {
        return Err(ApiFailure::invalid(
            "metadata",
            format!(
                "metadata must be an object of strings, not {}",
                json_type(&value)
            ),
        ));
    };
    if map.len() > MAX_METADATA_ENTRIES {
        return Err(ApiFailure::invalid(
            "metadata",
            format!(
                "metadata has {} entries; the maximum is {MAX_METADATA_ENTRIES}",
                map.len()
            ),
        ));
    }
    let mut checked = BTreeMap::new();
    for (key, value) in map {
        let param = format!("metadata.{key}");
        let key_length = key.chars().count();
        if key_length == 0 || key_length > MAX_METADATA_KEY {
            return Err(ApiFailure::invalid(
                &param,
                format!("metadata keys must be 1 to {MAX_METADATA_KEY} characters long"),
            ));
        }
        let value = match value {
            Value::String(_) => checked_string(&param, value, MAX_METADATA_VALUE)?,
            other => {
                return Err(ApiFailure::invalid(
                    &param,
                    format!("{param} must be a string, not {}", json_type(&other)),
                ));
            }
        };
        checked.insert(key, value);
    }
    Ok(checked)
}

/// The checked body of `POST /v1/threads/{id}/messages`.
#[derive(Debug)]
pub struct MessageInput {
    pub content: String,
    pub attachments: Vec<Attachment>,
    pub assistant_id: Option<String>,
}

/// Checks a message body: only `role: "user"` is accepted.
pub fn message_input(mut fields: Fields) -> Result<MessageInput, ApiFailure> {
    fields.reject_unknown(&["role", "content", "attachments", "assistant_id"])?;
    if let Some(role) = fields.string("role", 32)?
        && role != "user"
    {
        return Err(ApiFailure::invalid(
            "role",
            format!("role must be \"user\", got {role:?}; clients can only post user messages"),
        ));
    }
    let content = fields.string("content", MAX_CONTENT)?;
    let content = match content {
        Some(content) if !content.is_empty() => content,
        Some(_) => return Err(ApiFailure::invalid("content", "content must not be empty")),
        None => return Err(ApiFailure::invalid("content", "content is required")),
    };
    let attachments = match fields.take("attachments") {
        None => Vec::new(),
        Some(value) => attachments(value)?,
    };
    Ok(MessageInput {
        content,
        attachments,
        assistant_id: fields.string("assistant_id", MAX_ID)?,
    })
}

fn attachments(value: Value) -> Result<Vec<Attachment>, ApiFailure> {
    let items = array("attachments", value, MAX_ATTACHMENTS)?;
    let mut attachments = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let param = format!("attachments[{index}]");
        let mut fields = object(&param, item)?;
        fields
            .reject_unknown(&["type", "file_id"])
            .map_err(|err| prefixed(&param, err))?;
        if let Some(kind) = fields
            .string("type", 16)
            .map_err(|err| prefixed(&param, err))?
            && kind != "file"
        {
            return Err(ApiFailure::invalid(
                &format!("{param}.type"),
                format!("{param}.type must be \"file\", not {kind:?}"),
            ));
        }
        let id_param = format!("{param}.file_id");
        let file_id = match fields.take("file_id") {
            Some(value) => file_id(&id_param, value)?,
            None => {
                return Err(ApiFailure::invalid(
                    &id_param,
                    format!("{id_param} is required"),
                ));
            }
        };
        attachments.push(Attachment {
            kind: "file".to_owned(),
            file_id,
        });
    }
    Ok(attachments)
}

/// Checks the body of `POST /v1/threads/{id}/tool_outputs` and returns the call id
/// and output.
pub fn tool_output(mut fields: Fields) -> Result<(String, String), ApiFailure> {
    fields.reject_unknown(&["tool_call_id", "output"])?;
    let call_id = fields.required_string("tool_call_id", MAX_ID)?;
    let output = fields
        .string("output", MAX_TOOL_OUTPUT)?
        .ok_or_else(|| ApiFailure::invalid("output", "output is required"))?;
    Ok((call_id, output))
}
