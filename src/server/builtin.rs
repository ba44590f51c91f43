//! Built-in tools, which the server runs itself during a reply. Each call ends
//! `completed` or `failed` with a text output; a failure never stops the reply.
//! The tools themselves are in `server::tools`.

use serde_json::Value;

use super::state::AppState;
use super::tools::{knowledge, python, search};
use crate::api::types::{BUILTIN_TOOLS, ToolCallStatus};

/// Returns true for the names of tools the server runs itself.
pub fn is_builtin(name: &str) -> bool {
    BUILTIN_TOOLS.contains(&name)
}

/// What a built-in tool may use besides its arguments.
pub struct ToolContext<'a> {
    pub state: &'a AppState,
    /// Files the assistant and the thread can search.
    pub file_ids: &'a [String],
}

/// Runs a built-in tool and returns its status and output.
pub async fn run(
    context: &ToolContext<'_>,
    name: &str,
    arguments: &Value,
) -> (ToolCallStatus, String) {
    let result = match name {
        "knowledge_base" => knowledge_base(context, arguments).await,
        "code_interpreter" => code_interpreter(context, arguments).await,
        "web_search" => web_search(context, arguments).await,
        other => Err(format!("{other} is not a built-in tool of this server")),
    };
    match result {
        Ok((status, output)) => (status, output),
        Err(output) => (ToolCallStatus::Failed, output),
    }
}

type ToolResult = Result<(ToolCallStatus, String), String>;

/// Reads the string argument `key`, in an object or as the whole value.
fn text_argument(tool: &str, arguments: &Value, key: &str) -> Result<String, String> {
    let value = match arguments {
        Value::String(text) => Some(text.as_str()),
        other => other.get(key).and_then(Value::as_str),
    };
    match value {
        Some(text) if !text.trim().is_empty() => Ok(text.to_owned()),
        _ => Err(format!("{tool} needs a non-empty string argument {key:?}")),
    }
}

async fn knowledge_base(context: &ToolContext<'_>, arguments: &Value) -> ToolResult {
    let query = text_argument("knowledge_base", arguments, "query")?;
    if context.file_ids.is_empty() {
        return Err(
            "no files to search: upload one with POST /v1/files and list it in the assistant's \
             file_ids or attach it to a message"
                .to_owned(),
        );
    }
    let hits = knowledge::search(&context.state.db, context.file_ids.to_vec(), &query)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "knowledge_base search failed");
            "the document search failed; see the server log".to_owned()
        })?;
    Ok((
        ToolCallStatus::Completed,
        knowledge::format_hits(&query, &hits),
    ))
}

async fn code_interpreter(context: &ToolContext<'_>, arguments: &Value) -> ToolResult {
    let settings = &context.state.tools;
    if !settings.allow_code {
        return Err(
            "code_interpreter is turned off on this server; start it with `assisters serve \
             --allow-code-interpreter` to let assistants run Python code"
                .to_owned(),
        );
    }
    let code = text_argument("code_interpreter", arguments, "code")?;
    let outcome = python::run(&code, &settings.code_limits).await?;
    tracing::info!(exit_code = ?outcome.exit_code, limit = ?outcome.limit, "code_interpreter ran");
    let status = if outcome.succeeded() {
        ToolCallStatus::Completed
    } else {
        ToolCallStatus::Failed
    };
    let output = serde_json::to_string_pretty(&outcome)
        .map_err(|err| format!("cannot encode the result: {err}"))?;
    Ok((status, output))
}

async fn web_search(context: &ToolContext<'_>, arguments: &Value) -> ToolResult {
    let settings = &context.state.tools;
    let Some(endpoint) = &settings.search_url else {
        return Err(search::NOT_CONFIGURED.to_owned());
    };
    let query = text_argument("web_search", arguments, "query")?;
    let output = search::search(&settings.http, endpoint, &query).await?;
    Ok((ToolCallStatus::Completed, output))
}
