//! `/v1/threads`: create, list (optionally by `metadata.assistant_id`), show and
//! delete threads.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use crate::api::types::{Deleted, Page, THREAD_PREFIX, Thread};
use crate::server::body::{self, JsonBody, PageRequest};
use crate::server::error::{ApiFailure, ApiResult};
use crate::server::ids::{new_id, now_rfc3339};
use crate::server::state::AppState;
use crate::server::store;
use crate::server::validate::{self, MAX_ID};

pub async fn create(
    State(state): State<AppState>,
    JsonBody(mut fields): JsonBody,
) -> ApiResult<(StatusCode, Json<Thread>)> {
    fields.reject_unknown(&["metadata"])?;
    let metadata = match fields.take("metadata") {
        Some(value) => validate::metadata(value)?,
        None => Default::default(),
    };
    let thread = Thread {
        id: new_id(THREAD_PREFIX),
        created_at: now_rfc3339(),
        metadata,
    };
    let saved = thread.clone();
    state
        .db
        .call(move |conn| store::insert_thread(conn, &saved))
        .await?;
    tracing::info!(thread_id = %thread.id, "thread created");
    Ok((StatusCode::CREATED, Json(thread)))
}

pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<body::Query>,
) -> ApiResult<Json<Page<Thread>>> {
    let page = PageRequest::from_query(&query)?;
    let assistant_id = query.get("assistant_id").cloned();
    if let Some(id) = &assistant_id
        && (id.is_empty() || id.chars().count() > MAX_ID)
    {
        return Err(ApiFailure::invalid(
            "assistant_id",
            format!("assistant_id must be 1 to {MAX_ID} characters long"),
        ));
    }
    let (data, total) = state
        .db
        .call(move |conn| {
            store::list_threads(conn, page.limit, page.offset, assistant_id.as_deref())
        })
        .await?;
    Ok(Json(page.page(data, total)))
}

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Thread>> {
    let lookup = id.clone();
    state
        .db
        .call(move |conn| store::get_thread(conn, &lookup))
        .await?
        .map(Json)
        .ok_or_else(|| ApiFailure::not_found("thread", &id, None))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Deleted>> {
    if state.runs.is_active(&id) {
        return Err(ApiFailure::conflict(
            "run_in_progress",
            format!("a reply is being generated on thread {id}; retry when it ends"),
        ));
    }
    let lookup = id.clone();
    let deleted = state
        .db
        .call(move |conn| store::delete_thread(conn, &lookup))
        .await?;
    if !deleted {
        return Err(ApiFailure::not_found("thread", &id, None));
    }
    tracing::info!(thread_id = %id, "thread deleted");
    Ok(Json(Deleted { id, deleted: true }))
}
