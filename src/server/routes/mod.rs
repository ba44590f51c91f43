//! The HTTP routes, one file per resource, and the middleware stack around them.

mod assisters;
pub(crate) mod files;
mod messages;
mod stream;
mod threads;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};

use super::error::ApiFailure;
use super::limits;
use super::middleware::{catch_panic, json_errors, request_log};
use super::state::AppState;

/// Builds the application: every route behind auth, the rate limiter, JSON error
/// bodies, panic recovery and request logging (outermost).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/v1/assisters",
            post(assisters::create).get(assisters::list),
        )
        .route(
            "/v1/assisters/{id}",
            get(assisters::show)
                .post(assisters::update)
                .delete(assisters::delete),
        )
        .route(
            "/v1/files",
            // The upload route counts bytes against `--max-upload` itself.
            post(files::create)
                .layer(DefaultBodyLimit::disable())
                .get(files::list),
        )
        .route("/v1/files/{id}", get(files::show).delete(files::delete))
        .route("/v1/threads", post(threads::create).get(threads::list))
        .route(
            "/v1/threads/{id}",
            get(threads::show).delete(threads::delete),
        )
        .route(
            "/v1/threads/{id}/messages",
            post(messages::create).get(messages::list),
        )
        .route("/v1/threads/{id}/messages/stream", get(stream::open))
        .route("/v1/threads/{id}/tool_outputs", post(messages::tool_output))
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), limits::guard))
        .layer(from_fn(json_errors))
        .layer(from_fn(catch_panic))
        .layer(from_fn(request_log))
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiFailure {
    ApiFailure::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        super::error::INVALID_REQUEST,
        format!(
            "no endpoint {method} {}; the paths start with /v1, see docs/api.md for the routes",
            uri.path()
        ),
        None,
    )
}
