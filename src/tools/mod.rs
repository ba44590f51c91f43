//! Client-side custom tools: running the handler configured for a function tool when
//! a reply stops with `requires_action`. Used by `assisters chat` and the TUI.

pub mod handlers;

pub use handlers::{ToolError, run_handler};
