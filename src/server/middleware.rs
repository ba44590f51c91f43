//! Outer middleware: request ids and logs, panic recovery, and JSON error bodies for
//! responses that axum builds itself (unknown routes, wrong methods, rejections).

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use tracing::Instrument;

use super::error::{ApiFailure, INVALID_REQUEST, VALIDATION};
use super::ids::new_id;

/// Gives each request an id (sent back as `X-Request-Id`) and logs its method, path,
/// status and duration. The query string and headers are not logged, so neither is
/// the key.
pub async fn request_log(request: Request, next: Next) -> Response {
    let id = new_id("req_");
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", id = %id);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        tracing::info!(%method, %path, status, duration_ms, "request");
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Turns a panic in a handler into a 500 JSON error, as a last resort.
pub async fn catch_panic(request: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %message, "handler panicked");
            ApiFailure::internal().into_response()
        }
    }
}

/// Rewrites error responses that are not JSON into the error envelope, keeping their
/// status and headers (such as `Allow` on a 405).
pub async fn json_errors(request: Request, next: Next) -> Response {
    let route = format!("{} {}", request.method(), request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&text).trim().to_owned();
    let failure = failure_for(status, &route, detail);
    let mut rebuilt = failure.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rebuilt.headers_mut().insert(name.clone(), value.clone());
        }
    }
    *rebuilt.status_mut() = status;
    rebuilt
}

/// Builds the error for a status axum produced; `route` is the method and path.
fn failure_for(status: StatusCode, route: &str, detail: String) -> ApiFailure {
    match status {
        StatusCode::NOT_FOUND => ApiFailure::new(
            status,
            "not_found",
            INVALID_REQUEST,
            format!("no endpoint {route}; see docs/api.md for the routes"),
            None,
        ),
        StatusCode::METHOD_NOT_ALLOWED => ApiFailure::new(
            status,
            "method_not_allowed",
            INVALID_REQUEST,
            format!("{route} is not allowed; the Allow header lists the methods of this path"),
            None,
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiFailure::new(
            status,
            "request_too_large",
            INVALID_REQUEST,
            "the request body is too large",
            None,
        ),
        status if status.is_client_error() => {
            let message = if detail.is_empty() {
                "invalid request".to_owned()
            } else {
                detail
            };
            let mut failure = ApiFailure::malformed(message);
            failure.status = status;
            failure.body.kind = VALIDATION.to_owned();
            failure
        }
        _ => ApiFailure::internal(),
    }
}
