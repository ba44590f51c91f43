//! `/v1/threads/{id}/messages` (append, optionally with a blocking reply, and list)
//! and `/v1/threads/{id}/tool_outputs`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::api::types::{MESSAGE_PREFIX, Message, MessageStatus, Page, Role, ToolCallStatus};
use crate::server::body::{self, JsonBody, PageRequest};
use crate::server::error::{ApiFailure, ApiResult};
use crate::server::ids::{new_id, now_rfc3339};
use crate::server::routes::files::check_files_exist;
use crate::server::run::{self, Outcome};
use crate::server::state::AppState;
use crate::server::store;
use crate::server::validate;

fn busy(thread_id: &str) -> ApiFailure {
    ApiFailure::conflict(
        "run_in_progress",
        format!("a reply is being generated on thread {thread_id}; retry when it ends"),
    )
}

pub async fn create(
    State(state): State<AppState>,
    Path(thread_id): Path<String>,
    JsonBody(fields): JsonBody,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let input = validate::message_input(fields)?;
    // Hold the thread for the whole request when a reply follows, so no other run
    // can slip in between the user message and its reply.
    let guard = match &input.assistant_id {
        Some(_) => Some(
            state
                .runs
                .try_begin(&thread_id)
                .ok_or_else(|| busy(&thread_id))?,
        ),
        None if state.runs.is_active(&thread_id) => return Err(busy(&thread_id)),
        None => None,
    };
    let message = Message {
        id: new_id(MESSAGE_PREFIX),
        thread_id: thread_id.clone(),
        role: Role::User,
        content: input.content,
        created_at: now_rfc3339(),
        assistant_id: None,
        attachments: input.attachments,
        tool_calls: Vec::new(),
        status: MessageStatus::Completed,
    };
    let saved = message.clone();
    let assistant_id = input.assistant_id.clone();
    state
        .db
        .call(move |conn| {
            if store::get_thread(conn, &saved.thread_id)?.is_none() {
                return Ok(Err(ApiFailure::not_found("thread", &saved.thread_id, None)));
            }
            if let Some(id) = &assistant_id
                && store::get_assistant(conn, id)?.is_none()
            {
                return Ok(Err(ApiFailure::not_found(
                    "assistant",
                    id,
                    Some("assistant_id"),
                )));
            }
            let attached: Vec<String> = saved
                .attachments
                .iter()
                .map(|a| a.file_id.clone())
                .collect();
            if let Err(failure) = check_files_exist(conn, &attached, "attachments", ".file_id")? {
                return Ok(Err(failure));
            }
            store::insert_message(conn, &saved)?;
            Ok(Ok(()))
        })
        .await??;
    let (Some(assistant_id), Some(guard)) = (input.assistant_id, guard) else {
        return Ok((StatusCode::CREATED, Json(message)));
    };
    let turn = run::prepare(&state, thread_id, assistant_id, false).await?;
    let (mut events, handle) = run::start(&state, turn, guard, CancellationToken::new());
    while events.recv().await.is_some() {}
    let finished = handle.await.map_err(|err| {
        tracing::error!(error = %err, "run task failed");
        ApiFailure::internal()
    })?;
    match finished.outcome {
        Outcome::Completed | Outcome::RequiresAction => {
            Ok((StatusCode::OK, Json(finished.message)))
        }
        Outcome::Shutdown => Err(ApiFailure::shutting_down()),
        Outcome::Failed(message) => Err(ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "api_error",
            format!("the reply failed: {message}"),
            None,
        )),
        Outcome::Cancelled => Err(ApiFailure::internal()),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Path(thread_id): Path<String>,
    Query(query): Query<body::Query>,
) -> ApiResult<Json<Page<Message>>> {
    let page = PageRequest::from_query(&query)?;
    let lookup = thread_id.clone();
    let listed = state
        .db
        .call(move |conn| {
            if store::get_thread(conn, &lookup)?.is_none() {
                return Ok(None);
            }
            store::list_messages(conn, &lookup, page.limit, page.offset).map(Some)
        })
        .await?;
    let (data, total) = listed.ok_or_else(|| ApiFailure::not_found("thread", &thread_id, None))?;
    Ok(Json(page.page(data, total)))
}

pub async fn tool_output(
    State(state): State<AppState>,
    Path(thread_id): Path<String>,
    JsonBody(fields): JsonBody,
) -> ApiResult<Json<Message>> {
    let (call_id, output) = validate::tool_output(fields)?;
    state
        .db
        .call(move |conn| {
            if store::get_thread(conn, &thread_id)?.is_none() {
                return Ok(Err(ApiFailure::not_found("thread", &thread_id, None)));
            }
            let Some(mut message) = store::find_tool_call_message(conn, &thread_id, &call_id)?
            else {
                return Ok(Err(ApiFailure::not_found(
                    "tool call",
                    &call_id,
                    Some("tool_call_id"),
                )));
            };
            let Some(call) = message
                .tool_calls
                .iter_mut()
                .find(|call| call.id == call_id)
            else {
                return Ok(Err(ApiFailure::not_found(
                    "tool call",
                    &call_id,
                    Some("tool_call_id"),
                )));
            };
            if call.output.is_some() {
                return Ok(Err(ApiFailure::conflict(
                    "tool_output_exists",
                    format!("tool call {call_id} already has an output"),
                )));
            }
            call.output = Some(output);
            call.status = ToolCallStatus::Completed;
            store::update_message(conn, &message)?;
            tracing::info!(call_id = %call_id, message_id = %message.id, "tool output stored");
            Ok(Ok(Json(message)))
        })
        .await?
}
