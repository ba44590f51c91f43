//! Error responses of the server, always in the `{"error": {…}}` envelope.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::store::StoreError;
use crate::api::types::{ErrorBody, ErrorEnvelope};

/// `type` of validation failures, as in the documented missing-`name` example.
pub const VALIDATION: &str = "validation_error";
/// `code` of every 400, and `type` of 404, 405, 409 and 413 errors.
pub const INVALID_REQUEST: &str = "invalid_request_error";

/// A request that fails with an HTTP error status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// `Retry-After` seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ApiFailure {
    pub fn new(
        status: StatusCode,
        code: &str,
        kind: &str,
        message: impl Into<String>,
        param: Option<&str>,
    ) -> ApiFailure {
        ApiFailure {
            status,
            body: ErrorBody {
                code: code.to_owned(),
                message: message.into(),
                param: param.map(str::to_owned),
                kind: kind.to_owned(),
            },
            retry_after: None,
        }
    }

    /// 400 about the body field or query parameter `param`.
    pub fn invalid(param: &str, message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            VALIDATION,
            message,
            Some(param),
        )
    }

    /// 400 about the request as a whole, such as malformed JSON.
    pub fn malformed(message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            VALIDATION,
            message,
            None,
        )
    }

    /// 404 for an unknown `what` (such as "assistant") with `id`; `param` names the
    /// body or query field the id came from.
    pub fn not_found(what: &str, id: &str, param: Option<&str>) -> ApiFailure {
        ApiFailure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            INVALID_REQUEST,
            format!("no {what} with id {id:?}"),
            param,
        )
    }

    /// 409 with a specific `code`.
    pub fn conflict(code: &str, message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::CONFLICT, code, INVALID_REQUEST, message, None)
    }

    /// 413 for a body over `limit` bytes.
    pub fn too_large(limit: usize) -> ApiFailure {
        ApiFailure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            INVALID_REQUEST,
            format!("the request body is larger than the limit of {limit} bytes"),
            None,
        )
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "authentication_error",
            message,
            None,
        )
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(limit: u32, retry_after: u64) -> ApiFailure {
        let mut failure = ApiFailure::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "rate_limit_error",
            format!("rate limit of {limit} requests per minute reached; retry in {retry_after} s"),
            None,
        );
        failure.retry_after = Some(retry_after);
        failure
    }

    /// 500 whose message hides the internals; log the cause before calling it.
    pub fn internal() -> ApiFailure {
        ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "api_error",
            "the server failed to handle the request; see the server log",
            None,
        )
    }

    /// 503 while the server shuts down.
    pub fn shutting_down() -> ApiFailure {
        ApiFailure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_shutting_down",
            "api_error",
            "the server is shutting down; retry against a running server",
            None,
        )
    }
}

impl From<StoreError> for ApiFailure {
    fn from(err: StoreError) -> ApiFailure {
        tracing::error!(error = %err, "storage failure");
        ApiFailure::internal()
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), code = %self.body.code, message = %self.body.message, "request failed");
        } else {
            tracing::info!(status = self.status.as_u16(), code = %self.body.code, message = %self.body.message, "request rejected");
        }
        let envelope = ErrorEnvelope { error: self.body };
        let body = serde_json::to_string(&envelope).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The result of a route handler.
pub type ApiResult<T> = Result<T, ApiFailure>;
