//! Built-in tools, which the server runs itself during a reply.

use serde_json::Value;

use crate::api::types::{BUILTIN_TOOLS, ToolCallStatus};

/// Returns true for the names of tools the server runs itself.
pub fn is_builtin(name: &str) -> bool {
    BUILTIN_TOOLS.contains(&name)
}

/// Runs a built-in tool and returns its status and output.
// TODO: run web_search against a configured backend, and knowledge_base and
// code_interpreter once they exist; until then every call fails with a clear output.
pub fn run(name: &str, _arguments: &Value) -> (ToolCallStatus, String) {
    let output = match name {
        "web_search" => "web_search is not configured on this server".to_owned(),
        other => format!("{other} is not available on this server yet"),
    };
    (ToolCallStatus::Failed, output)
}
