//! `GET /v1/threads/{id}/messages/stream`: runs the assistant and streams the reply
//! as server-sent events.

use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use tokio_util::sync::CancellationToken;

use crate::server::body;
use crate::server::error::{ApiFailure, ApiResult};
use crate::server::run;
use crate::server::state::AppState;
use crate::server::validate::MAX_ID;

pub async fn open(
    State(state): State<AppState>,
    Path(thread_id): Path<String>,
    Query(query): Query<body::Query>,
) -> ApiResult<Response> {
    let assistant_id = match query.get("assistant_id") {
        Some(id) if !id.is_empty() && id.chars().count() <= MAX_ID => id.clone(),
        Some(_) => {
            return Err(ApiFailure::invalid(
                "assistant_id",
                format!("assistant_id must be 1 to {MAX_ID} characters long"),
            ));
        }
        None => {
            return Err(ApiFailure::invalid(
                "assistant_id",
                "assistant_id is required: the assistant that writes the reply",
            ));
        }
    };
    let regenerate = match query.get("regenerate").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiFailure::invalid(
                "regenerate",
                format!("regenerate must be true or false, got {other:?}"),
            ));
        }
    };
    let guard = state.runs.try_begin(&thread_id).ok_or_else(|| {
        ApiFailure::conflict(
            "run_in_progress",
            format!("a reply is being generated on thread {thread_id}; retry when it ends"),
        )
    })?;
    let turn = run::prepare(&state, thread_id, assistant_id, regenerate).await?;
    let cancel = CancellationToken::new();
    let (events, _handle) = run::start(&state, turn, guard, cancel.clone());
    let stream = sse_events(events, cancel);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(state.keep_alive))
        .into_response())
}

/// Turns run events into SSE events. Dropping the stream (the client went away)
/// cancels the run through the drop guard.
fn sse_events(
    events: tokio::sync::mpsc::Receiver<crate::api::types::StreamEvent>,
    cancel: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let guard = cancel.drop_guard();
    futures::stream::unfold((events, guard), |(mut events, guard)| async move {
        let event = events.recv().await?;
        Some((Ok(Event::default().data(event.to_data())), (events, guard)))
    })
}
