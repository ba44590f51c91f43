//! Errors of the scripting subcommands and their exit codes.

use std::process::ExitCode;

use crate::api::ApiError;

use super::output::sanitize_line;

/// Exit code of an API, transport or tool failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// Added to a transport error: the usual causes are a stopped server or a wrong URL.
const TRANSPORT_HINT: &str =
    "; check that the server is running and that --base-url or ASSISTERS_BASE_URL points at it";

/// A failed subcommand.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API call failed; printed as `error: CODE: MESSAGE`.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Bad flags, input or configuration; exit code 2.
    #[error("{0}")]
    Usage(String),
    /// Anything else that stops the command, such as a failing tool handler; exit
    /// code 1. The first part is the code printed before the message.
    #[error("{0}: {1}")]
    Failed(&'static str, String),
}

impl CliError {
    /// Returns the process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) | CliError::Api(ApiError::Config(_)) => ExitCode::from(EXIT_USAGE),
            CliError::Api(_) | CliError::Failed(..) => ExitCode::from(EXIT_FAILURE),
        }
    }

    /// Returns the error code printed before the message.
    pub fn code(&self) -> &str {
        match self {
            CliError::Api(err) => err.code(),
            CliError::Usage(_) => "usage",
            CliError::Failed(code, _) => code,
        }
    }

    /// Returns the one-line message printed to stderr, starting with `error: `. Text
    /// that came from the server is stripped of control characters.
    pub fn report(&self) -> String {
        match self {
            CliError::Api(err) => {
                let mut line = format!(
                    "error: {}: {}",
                    sanitize_line(err.code()),
                    sanitize_line(err.message())
                );
                if let Some(param) = err.param() {
                    line.push_str(&format!(" (param: {})", sanitize_line(param)));
                }
                if matches!(err, ApiError::Transport(_)) {
                    line.push_str(TRANSPORT_HINT);
                }
                line
            }
            CliError::Usage(message) => format!("error: {message}"),
            CliError::Failed(code, message) => format!("error: {code}: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_report_names_code_and_param() {
        let err = CliError::Api(ApiError::Api {
            status: 400,
            code: "invalid_request_error".into(),
            message: "name is required\x1b[2J".into(),
            param: Some("name".into()),
            kind: "validation_error".into(),
            retry_after: None,
        });
        assert_eq!(
            err.report(),
            "error: invalid_request_error: name is required (param: name)"
        );
        assert_eq!(err.exit_code(), ExitCode::from(EXIT_FAILURE));
    }

    #[test]
    fn invalid_base_url_is_usage_error() {
        let err = CliError::Api(ApiError::Config("invalid base URL".into()));
        assert_eq!(err.exit_code(), ExitCode::from(EXIT_USAGE));
    }
}
