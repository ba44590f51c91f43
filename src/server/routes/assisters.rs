//! `/v1/assisters`: create, list, show, partially update and delete assistants.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use crate::api::types::{ASSISTANT_PREFIX, Assistant, Deleted, Page};
use crate::server::body::{self, JsonBody, PageRequest};
use crate::server::error::{ApiFailure, ApiResult};
use crate::server::ids::{new_id, now_rfc3339};
use crate::server::routes::files::check_files_exist;
use crate::server::state::AppState;
use crate::server::store;
use crate::server::validate::{AssistantInput, assistant_input};

pub async fn create(
    State(state): State<AppState>,
    JsonBody(fields): JsonBody,
) -> ApiResult<(StatusCode, Json<Assistant>)> {
    let input = assistant_input(fields, true)?;
    let now = now_rfc3339();
    let mut assistant = Assistant {
        id: new_id(ASSISTANT_PREFIX),
        name: String::new(),
        description: String::new(),
        instructions: String::new(),
        model: String::new(),
        tools: Vec::new(),
        settings: Default::default(),
        file_ids: Vec::new(),
        created_at: now.clone(),
        updated_at: now,
    };
    apply(&mut assistant, input);
    let saved = assistant.clone();
    state
        .db
        .call(move |conn| {
            if let Err(failure) = check_files_exist(conn, &saved.file_ids, "file_ids", "")? {
                return Ok(Err(failure));
            }
            store::insert_assistant(conn, &saved).map(Ok)
        })
        .await??;
    tracing::info!(assistant_id = %assistant.id, "assistant created");
    Ok((StatusCode::CREATED, Json(assistant)))
}

fn apply(assistant: &mut Assistant, input: AssistantInput) {
    if let Some(name) = input.name {
        assistant.name = name;
    }
    if let Some(description) = input.description {
        assistant.description = description;
    }
    if let Some(instructions) = input.instructions {
        assistant.instructions = instructions;
    }
    if let Some(model) = input.model {
        assistant.model = model;
    }
    if let Some(tools) = input.tools {
        assistant.tools = tools;
    }
    if let Some(settings) = input.settings {
        assistant.settings = settings;
    }
    if let Some(file_ids) = input.file_ids {
        assistant.file_ids = file_ids;
    }
}

pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<body::Query>,
) -> ApiResult<Json<Page<Assistant>>> {
    let page = PageRequest::from_query(&query)?;
    let (data, total) = state
        .db
        .call(move |conn| store::list_assistants(conn, page.limit, page.offset))
        .await?;
    Ok(Json(page.page(data, total)))
}

async fn load(state: &AppState, id: String) -> ApiResult<Assistant> {
    let lookup = id.clone();
    state
        .db
        .call(move |conn| store::get_assistant(conn, &lookup))
        .await?
        .ok_or_else(|| ApiFailure::not_found("assistant", &id, None))
}

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Assistant>> {
    Ok(Json(load(&state, id).await?))
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(fields): JsonBody,
) -> ApiResult<Json<Assistant>> {
    let input = assistant_input(fields, false)?;
    let mut assistant = load(&state, id.clone()).await?;
    // Only ids sent now are checked, so a file deleted since does not block edits.
    let new_file_ids = input.file_ids.clone().unwrap_or_default();
    apply(&mut assistant, input);
    assistant.updated_at = now_rfc3339();
    let saved = assistant.clone();
    let found = state
        .db
        .call(move |conn| {
            if let Err(failure) = check_files_exist(conn, &new_file_ids, "file_ids", "")? {
                return Ok(Err(failure));
            }
            store::update_assistant(conn, &saved).map(Ok)
        })
        .await??;
    if !found {
        return Err(ApiFailure::not_found("assistant", &id, None));
    }
    Ok(Json(assistant))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Deleted>> {
    let lookup = id.clone();
    let deleted = state
        .db
        .call(move |conn| store::delete_assistant(conn, &lookup))
        .await?;
    if !deleted {
        return Err(ApiFailure::not_found("assistant", &id, None));
    }
    tracing::info!(assistant_id = %id, "assistant deleted");
    Ok(Json(Deleted { id, deleted: true }))
}
