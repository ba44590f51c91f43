//! Errors of API calls: an error answer from the server, or a failure to reach it.

use std::time::Duration;

use super::types::ErrorBody;

/// A failed API call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status and body.
    #[error("{code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        param: Option<String>,
        /// The error body's `type`.
        kind: String,
        /// The `Retry-After` of a 429, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// The request did not get an HTTP answer: connection refused, reset or timed out.
    #[error("transport_error: {0}")]
    Transport(String),
    /// The server answered, but not with the contract's shape.
    #[error("invalid_response: {0}")]
    Decode(String),
    /// The client was set up wrongly, for example with an invalid base URL.
    #[error("invalid_config: {0}")]
    Config(String),
}

impl ApiError {
    /// Builds an API error from a status and an error body.
    pub fn from_body(status: u16, body: ErrorBody, retry_after: Option<Duration>) -> Self {
        ApiError::Api {
            status,
            code: body.code,
            message: body.message,
            param: body.param,
            kind: body.kind,
            retry_after,
        }
    }

    /// Returns the HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Returns the error code shown to users: the API's `code`, or a name for the kind
    /// of local failure.
    pub fn code(&self) -> &str {
        match self {
            ApiError::Api { code, .. } => code,
            ApiError::Transport(_) => "transport_error",
            ApiError::Decode(_) => "invalid_response",
            ApiError::Config(_) => "invalid_config",
        }
    }

    /// Returns the message without the code.
    pub fn message(&self) -> &str {
        match self {
            ApiError::Api { message, .. } => message,
            ApiError::Transport(message)
            | ApiError::Decode(message)
            | ApiError::Config(message) => message,
        }
    }

    /// Returns the field an API error names, if any.
    pub fn param(&self) -> Option<&str> {
        match self {
            ApiError::Api { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    /// Returns true when the server does not offer the endpoint (404 or 405 on a route
    /// that an older or foreign server may lack).
    pub fn is_unsupported_endpoint(&self) -> bool {
        matches!(self.status(), Some(404 | 405 | 501))
    }
}
