//! `assisters assistants list|show|create|update|delete`.

use std::path::Path;

use crate::api::Client;
use crate::api::types::{
    Assistant, AssistantCreate, AssistantUpdate, FunctionTool, Settings, Tool,
};

use super::error::CliError;
use super::output::{Table, print_json, print_page, print_text, sanitize_line, sanitize_text};
use super::{AssistantFields, AssistantsCommand};

/// Runs one `assistants` subcommand.
pub async fn run(command: &AssistantsCommand, client: &Client, json: bool) -> Result<(), CliError> {
    match command {
        AssistantsCommand::List(page) => {
            let list = client.list_assistants(page.limit, page.offset).await?;
            if json {
                return print_json(&list);
            }
            let mut table = Table::new(&["ID", "NAME", "MODEL", "TOOLS", "UPDATED"]);
            for assistant in &list.data {
                table.row(vec![
                    assistant.id.clone(),
                    assistant.name.clone(),
                    assistant.model.clone(),
                    tool_names(&assistant.tools),
                    assistant.updated_at.clone(),
                ]);
            }
            print_page(&table, &list, page.offset);
            Ok(())
        }
        AssistantsCommand::Show { id } => {
            let assistant = client.get_assistant(id).await?;
            print_assistant(&assistant, json)
        }
        AssistantsCommand::Create(fields) => {
            let body = create_body(fields)?;
            let assistant = client.create_assistant(&body).await?;
            print_assistant(&assistant, json)
        }
        AssistantsCommand::Update { id, fields } => {
            let body = update_body(client, id, fields).await?;
            let assistant = client.update_assistant(id, &body).await?;
            print_assistant(&assistant, json)
        }
        AssistantsCommand::Delete { id } => {
            let deleted = client.delete_assistant(id).await?;
            if json {
                return print_json(&deleted);
            }
            print_text(&format!("deleted {}\n", sanitize_line(&deleted.id)));
            Ok(())
        }
    }
}

fn print_assistant(assistant: &Assistant, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(assistant);
    }
    print_text(&render_assistant(assistant));
    Ok(())
}

/// Returns an assistant as `field  value` lines, with the instructions last.
pub fn render_assistant(assistant: &Assistant) -> String {
    let optional = |value: Option<f64>| value.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let mut table = Table::new(&["FIELD", "VALUE"]);
    let fields = [
        ("id", assistant.id.clone()),
        ("name", assistant.name.clone()),
        ("description", assistant.description.clone()),
        ("model", assistant.model.clone()),
        ("tools", tool_names(&assistant.tools)),
        ("file_ids", list_or_dash(&assistant.file_ids)),
        ("temperature", optional(assistant.settings.temperature)),
        ("top_p", optional(assistant.settings.top_p)),
        ("created_at", assistant.created_at.clone()),
        ("updated_at", assistant.updated_at.clone()),
    ];
    for (name, value) in fields {
        table.row(vec![name.to_owned(), value]);
    }
    let mut out = table.render();
    if !assistant.instructions.is_empty() {
        out.push_str("instructions:\n");
        for line in sanitize_text(&assistant.instructions).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// Returns the values separated by commas, or `-` when there are none.
fn list_or_dash(values: &[String]) -> String {
    if values.is_empty() {
        "-".to_owned()
    } else {
        values.join(", ")
    }
}

/// Returns tool names separated by commas, custom functions marked with `()`.
fn tool_names(tools: &[Tool]) -> String {
    let names: Vec<String> = tools
        .iter()
        .map(|tool| match tool {
            Tool::Builtin(name) => name.clone(),
            Tool::Function(function) => format!("{}()", function.name),
        })
        .collect();
    list_or_dash(&names)
}

fn create_body(fields: &AssistantFields) -> Result<AssistantCreate, CliError> {
    let Some(name) = fields.name.clone() else {
        return Err(CliError::Usage(
            "assistants create needs --name NAME".to_owned(),
        ));
    };
    let settings = settings_of(fields);
    Ok(AssistantCreate {
        name,
        description: fields.description.clone(),
        instructions: fields.instructions.clone(),
        model: fields.model.clone(),
        tools: parse_tools(&fields.tools)?,
        settings: (settings != Settings::default()).then_some(settings),
        file_ids: file_ids_of(fields),
    })
}

/// Builds a partial update from the flags given. When only one of `--temperature` and
/// `--top-p` is given, the other is read from the assistant first, because `settings`
/// is replaced as a whole.
async fn update_body(
    client: &Client,
    id: &str,
    fields: &AssistantFields,
) -> Result<AssistantUpdate, CliError> {
    let mut settings = settings_of(fields);
    if settings.temperature.is_some() != settings.top_p.is_some() {
        let current = client.get_assistant(id).await?.settings;
        settings.temperature = settings.temperature.or(current.temperature);
        settings.top_p = settings.top_p.or(current.top_p);
    }
    let body = AssistantUpdate {
        name: fields.name.clone(),
        description: fields.description.clone(),
        instructions: fields.instructions.clone(),
        model: fields.model.clone(),
        tools: parse_tools(&fields.tools)?,
        settings: (settings != Settings::default()).then_some(settings),
        file_ids: file_ids_of(fields),
    };
    if body.is_empty() {
        return Err(CliError::Usage(
            "assistants update needs at least one of --name, --description, --instructions, \
             --model, --tool, --temperature, --top-p, --file-id"
                .to_owned(),
        ));
    }
    Ok(body)
}

/// Returns the `--file-id` values; no flags means the file ids are not sent.
fn file_ids_of(fields: &AssistantFields) -> Option<Vec<String>> {
    (!fields.file_ids.is_empty()).then(|| fields.file_ids.clone())
}

fn settings_of(fields: &AssistantFields) -> Settings {
    Settings {
        temperature: fields.temperature,
        top_p: fields.top_p,
    }
}

/// Parses `--tool` values: a built-in name, or `@FILE` holding a function object.
/// No flags means the tools are not sent.
pub fn parse_tools(values: &[String]) -> Result<Option<Vec<Tool>>, CliError> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut tools = Vec::with_capacity(values.len());
    for value in values {
        let tool = match value.strip_prefix('@') {
            Some("") => {
                return Err(CliError::Usage(
                    "--tool @ needs a file name, as in --tool @lookup_user.json".to_owned(),
                ));
            }
            Some(path) => Tool::Function(read_function_file(Path::new(path))?),
            None if value.trim().is_empty() => {
                return Err(CliError::Usage(
                    "--tool needs a built-in tool name or @FILE".to_owned(),
                ));
            }
            None => Tool::Builtin(value.clone()),
        };
        tools.push(tool);
    }
    Ok(Some(tools))
}

fn read_function_file(path: &Path) -> Result<FunctionTool, CliError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        CliError::Usage(format!("cannot read tool file {}: {err}", path.display()))
    })?;
    reject_unknown_keys(path, &text)?;
    let function: FunctionTool = serde_json::from_str(&text).map_err(|err| {
        CliError::Usage(format!(
            "tool file {} is not a function object \
             ({{\"type\": \"function\", \"name\", \"description\", \"parameters\"}}): {err}",
            path.display()
        ))
    })?;
    if function.name.trim().is_empty() {
        return Err(CliError::Usage(format!(
            "tool file {} has an empty \"name\"",
            path.display()
        )));
    }
    Ok(function)
}

/// Keys of a function object. Serde ignores other keys, so without this check a
/// misspelled `parameters` would be dropped silently.
const FUNCTION_KEYS: [&str; 4] = ["type", "name", "description", "parameters"];

/// Rejects a tool file whose object has a key outside [`FUNCTION_KEYS`].
fn reject_unknown_keys(path: &Path, text: &str) -> Result<(), CliError> {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str(text) else {
        return Ok(());
    };
    match object
        .keys()
        .find(|key| !FUNCTION_KEYS.contains(&key.as_str()))
    {
        Some(key) => Err(CliError::Usage(format!(
            "tool file {} has the unknown key {key:?}; a function object has only {}",
            path.display(),
            FUNCTION_KEYS.join(", ")
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` to `name` in a new temporary directory, which lives as long as
    /// the returned guard.
    fn tool_file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("temp dir");
        };
        let file = dir.path().join(name);
        assert!(std::fs::write(&file, text).is_ok());
        (dir, file)
    }

    #[test]
    fn builtin_and_file_tools_parse() {
        let (_dir, file) = tool_file(
            "lookup.json",
            r#"{"type":"function","name":"lookup_user","parameters":{"type":"object"}}"#,
        );
        let values = vec!["web_search".to_owned(), format!("@{}", file.display())];
        let tools = parse_tools(&values).ok().flatten().unwrap_or_default();
        assert_eq!(tools.len(), 2);
        assert_eq!(tools[0], Tool::Builtin("web_search".into()));
        assert_eq!(tools[1].name(), "lookup_user");
    }

    #[test]
    fn bad_tool_file_is_named() {
        let missing = parse_tools(&["@/nonexistent/tool.json".to_owned()]);
        let Err(CliError::Usage(message)) = missing else {
            panic!("expected a usage error");
        };
        assert!(message.contains("/nonexistent/tool.json"), "{message}");
        let empty = parse_tools(&["@".to_owned()]);
        let Err(CliError::Usage(message)) = empty else {
            panic!("expected a usage error");
        };
        assert!(message.contains("needs a file name"), "{message}");
    }

    #[test]
    fn unknown_key_in_tool_file_is_named() {
        let (_dir, file) = tool_file(
            "typo.json",
            r#"{"type":"function","name":"f","paramters":{"type":"object"}}"#,
        );
        let result = parse_tools(&[format!("@{}", file.display())]);
        let Err(CliError::Usage(message)) = result else {
            panic!("expected a usage error, got {result:?}");
        };
        assert!(message.contains("\"paramters\""), "{message}");
        assert!(message.contains("typo.json"), "{message}");
    }

    #[test]
    fn create_needs_name() {
        let result = create_body(&AssistantFields::default());
        assert!(matches!(result, Err(CliError::Usage(message)) if message.contains("--name")));
    }
}
