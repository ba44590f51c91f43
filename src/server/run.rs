//! Runs an engine for one turn of a thread and streams its events.
//!
//! A run is a task on the server's tracker. It requests rounds of events from the engine,
//! runs built-in tools between rounds, and stops at the first of: a finished reply,
//! pending custom tool calls, an engine error, cancellation (the client went away)
//! or server shutdown. It then saves the assistant message (status `completed`,
//! `requires_action` or `incomplete`) and only after that sends the last event and
//! `[DONE]`, so a history loaded after the stream matches what it showed.
//!
//! Before the engine's first round, the server may call built-in tools itself
//! (`tools::automatic_calls`): a `knowledge_base` search for the user's message when
//! the assistant has files, so every engine answers from the documents.

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::builtin::{self, ToolContext};
use super::error::ApiFailure;
use super::ids::{new_id, now_rfc3339};
use super::state::{AppState, RunGuard};
use super::store::{self, StoreError};
use super::tools;
use crate::api::types::*;
use crate::engine::{EngineEvent, EngineRequest};

/// Rounds of tool calls allowed in one turn before the run stops, so an engine that
/// keeps calling tools cannot loop forever.
const MAX_ROUNDS: usize = 8;
/// Events buffered between the run and the response.
const CHANNEL_SIZE: usize = 64;

/// The work of one run, checked and prepared by [`prepare`].
#[derive(Debug)]
pub struct Turn {
    pub assistant: Assistant,
    /// The assistant message being written: new, or one that continues after tools.
    pub reply: Message,
    /// The thread's messages, without `reply`.
    pub history: Vec<Message>,
}

/// The end state of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed,
    RequiresAction,
    Failed(String),
    Shutdown,
    Cancelled,
}

/// The saved reply and how the run ended.
#[derive(Debug)]
pub struct Finished {
    pub message: Message,
    pub outcome: Outcome,
}

/// Checks that `thread_id` has a user message to answer with `assistant_id` and
/// prepares the reply; with `regenerate`, deletes the existing reply first.
pub async fn prepare(
    state: &AppState,
    thread_id: String,
    assistant_id: String,
    regenerate: bool,
) -> Result<Turn, ApiFailure> {
    state
        .db
        .call(move |conn| {
            let Some(_thread) = store::get_thread(conn, &thread_id)? else {
                return Ok(Err(ApiFailure::not_found("thread", &thread_id, None)));
            };
            let Some(assistant) = store::get_assistant(conn, &assistant_id)? else {
                return Ok(Err(ApiFailure::not_found(
                    "assistant",
                    &assistant_id,
                    Some("assistant_id"),
                )));
            };
            let messages = store::thread_messages(conn, &thread_id)?;
            let tx = conn.transaction()?;
            let turn = plan_turn(&tx, assistant, messages, regenerate)?;
            tx.commit()?;
            Ok(turn)
        })
        .await?
}

fn plan_turn(
    conn: &rusqlite::Connection,
    assistant: Assistant,
    mut messages: Vec<Message>,
    regenerate: bool,
) -> Result<Result<Turn, ApiFailure>, StoreError> {
    let Some(user_index) = messages.iter().rposition(|m| m.role == Role::User) else {
        return Ok(Err(ApiFailure::conflict(
            "no_user_message",
            "the thread has no user message to answer; post one first",
        )));
    };
    let user = &messages[user_index];
    let thread_id = user.thread_id.clone();
    let existing = messages[user_index + 1..]
        .iter()
        .rev()
        .find(|m| m.role == Role::Assistant)
        .cloned();
    match existing {
        Some(reply) if reply.status == MessageStatus::RequiresAction && !regenerate => {
            let pending: Vec<&str> = reply
                .tool_calls
                .iter()
                .filter(|call| call.output.is_none())
                .map(|call| call.id.as_str())
                .collect();
            if !pending.is_empty() {
                return Ok(Err(ApiFailure::conflict(
                    "tool_outputs_pending",
                    format!(
                        "the reply {} waits for tool outputs of {}; post them to \
                         /v1/threads/{thread_id}/tool_outputs first",
                        reply.id,
                        pending.join(", ")
                    ),
                )));
            }
            messages.retain(|m| m.id != reply.id);
            Ok(Ok(Turn {
                assistant,
                reply,
                history: messages,
            }))
        }
        Some(reply) if !regenerate => Ok(Err(ApiFailure::conflict(
            "reply_exists",
            format!(
                "the latest user message already has the reply {}; pass regenerate=true to \
                 replace it",
                reply.id
            ),
        ))),
        _ => {
            for later in messages.drain(user_index + 1..) {
                store::delete_message(conn, &later.id)?;
            }
            let reply = Message {
                id: new_id(MESSAGE_PREFIX),
                thread_id,
                role: Role::Assistant,
                content: String::new(),
                created_at: now_rfc3339(),
                assistant_id: Some(assistant.id.clone()),
                attachments: Vec::new(),
                tool_calls: Vec::new(),
                status: MessageStatus::Incomplete,
            };
            Ok(Ok(Turn {
                assistant,
                reply,
                history: messages,
            }))
        }
    }
}

/// Starts the run of `turn`. Events arrive on the receiver, which ends after
/// `[DONE]`; dropping it cancels the run. The handle yields the saved reply.
pub fn start(
    state: &AppState,
    turn: Turn,
    guard: RunGuard,
    cancel: CancellationToken,
) -> (mpsc::Receiver<StreamEvent>, JoinHandle<Finished>) {
    let (sender, receiver) = mpsc::channel(CHANNEL_SIZE);
    let run = Run {
        state: state.clone(),
        sender,
        cancel,
    };
    let handle = state.tracker.spawn(async move {
        let finished = run.drive(turn).await;
        drop(guard);
        finished
    });
    (receiver, handle)
}

struct Run {
    state: AppState,
    sender: mpsc::Sender<StreamEvent>,
    cancel: CancellationToken,
}

impl Run {
    async fn drive(self, turn: Turn) -> Finished {
        let Turn {
            assistant,
            mut reply,
            history,
        } = turn;
        tracing::info!(message_id = %reply.id, thread_id = %reply.thread_id, assistant_id = %assistant.id, "run started");
        let outcome = self.rounds(&assistant, &mut reply, history).await;
        reply.status = match outcome {
            Outcome::Completed => MessageStatus::Completed,
            Outcome::RequiresAction => MessageStatus::RequiresAction,
            _ => MessageStatus::Incomplete,
        };
        self.finish(reply, outcome).await
    }

    async fn rounds(
        &self,
        assistant: &Assistant,
        reply: &mut Message,
        history: Vec<Message>,
    ) -> Outcome {
        let file_ids = self.searchable_files(assistant, &history).await;
        if reply.tool_calls.is_empty() {
            let calls = tools::automatic_calls(
                assistant,
                &history,
                !file_ids.is_empty(),
                self.state.engine.calls_builtin_tools(),
            );
            if let Err(outcome) = self.run_tools(reply, calls, &file_ids).await {
                return outcome;
            }
        }
        for _ in 0..MAX_ROUNDS {
            let mut messages = history.clone();
            if !reply.tool_calls.is_empty() {
                messages.push(reply.clone());
            }
            let request = EngineRequest {
                assistant: assistant.clone(),
                messages,
            };
            let calls = match self.round(request, reply).await {
                Ok(calls) => calls,
                Err(outcome) => return outcome,
            };
            if calls.is_empty() {
                return Outcome::Completed;
            }
            if let Err(outcome) = self.run_tools(reply, calls, &file_ids).await {
                return outcome;
            }
            if reply.tool_calls.iter().any(|call| call.output.is_none()) {
                return Outcome::RequiresAction;
            }
        }
        Outcome::Failed(format!(
            "the engine kept calling tools for {MAX_ROUNDS} rounds; the reply was stopped"
        ))
    }

    /// Streams one engine round into `reply`; returns the tool calls it requested.
    async fn round(
        &self,
        request: EngineRequest,
        reply: &mut Message,
    ) -> Result<Vec<(String, serde_json::Value)>, Outcome> {
        let mut events = self.state.engine.reply(request, self.cancel.child_token());
        let mut calls = Vec::new();
        loop {
            let event = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(Outcome::Cancelled),
                () = self.state.shutdown.cancelled() => return Err(Outcome::Shutdown),
                event = events.next() => event,
            };
            match event {
                Some(EngineEvent::Delta(text)) => {
                    reply.content.push_str(&text);
                    let delta = StreamEvent::Delta {
                        id: reply.id.clone(),
                        content: text,
                    };
                    if self.sender.send(delta).await.is_err() {
                        return Err(Outcome::Cancelled);
                    }
                }
                Some(EngineEvent::ToolCall { name, arguments }) => calls.push((name, arguments)),
                Some(EngineEvent::Done) => return Ok(calls),
                Some(EngineEvent::Error(message)) => return Err(Outcome::Failed(message)),
                None if self.cancel.is_cancelled() => return Err(Outcome::Cancelled),
                None => {
                    return Err(Outcome::Failed(format!(
                        "the {} engine stopped without finishing the reply",
                        self.state.engine.name()
                    )));
                }
            }
        }
    }

    /// Returns the ids of the existing files that the assistant lists or that the
    /// thread's messages attach; files deleted since are left out.
    async fn searchable_files(&self, assistant: &Assistant, history: &[Message]) -> Vec<String> {
        let mut ids: Vec<String> = assistant.file_ids.clone();
        let attached = history.iter().flat_map(|m| &m.attachments);
        for attachment in attached {
            if !ids.contains(&attachment.file_id) {
                ids.push(attachment.file_id.clone());
            }
        }
        if ids.is_empty() {
            return ids;
        }
        let result = self
            .state
            .db
            .call(move |conn| {
                let mut existing = Vec::with_capacity(ids.len());
                for id in ids {
                    if store::get_file(conn, &id)?.is_some() {
                        existing.push(id);
                    }
                }
                Ok(existing)
            })
            .await;
        result.unwrap_or_else(|err| {
            tracing::error!(error = %err, "cannot look up the files of a turn");
            Vec::new()
        })
    }

    /// Records the calls on `reply`, runs the built-in ones and sends their events.
    async fn run_tools(
        &self,
        reply: &mut Message,
        calls: Vec<(String, serde_json::Value)>,
        file_ids: &[String],
    ) -> Result<(), Outcome> {
        let context = ToolContext {
            state: &self.state,
            file_ids,
        };
        for (name, arguments) in calls {
            let id = new_id(CALL_PREFIX);
            let builtin = builtin::is_builtin(&name);
            let status = if builtin {
                ToolCallStatus::InProgress
            } else {
                ToolCallStatus::RequiresAction
            };
            self.send(StreamEvent::ToolCall {
                id: id.clone(),
                message_id: reply.id.clone(),
                name: name.clone(),
                arguments: arguments.clone(),
                status,
            })
            .await?;
            let mut record = ToolCallRecord {
                id: id.clone(),
                name: name.clone(),
                arguments,
                status,
                output: None,
            };
            if builtin {
                let (status, output) = tokio::select! {
                    biased;
                    () = self.cancel.cancelled() => return Err(Outcome::Cancelled),
                    () = self.state.shutdown.cancelled() => return Err(Outcome::Shutdown),
                    result = builtin::run(&context, &name, &record.arguments) => result,
                };
                tracing::info!(tool = %name, call_id = %id, ?status, "built-in tool ran");
                record.status = status;
                record.output = Some(output.clone());
                self.send(StreamEvent::ToolResult {
                    tool_call_id: id,
                    name,
                    output,
                    status,
                })
                .await?;
            }
            reply.tool_calls.push(record);
        }
        Ok(())
    }

    async fn send(&self, event: StreamEvent) -> Result<(), Outcome> {
        self.sender
            .send(event)
            .await
            .map_err(|_| Outcome::Cancelled)
    }

    /// Saves the reply, then sends the closing event and `[DONE]`.
    async fn finish(self, reply: Message, outcome: Outcome) -> Finished {
        let saved = reply.clone();
        let result = self
            .state
            .db
            .call(move |conn| store::save_message(conn, &saved))
            .await;
        tracing::info!(message_id = %reply.id, outcome = ?outcome, "run finished");
        let last = match (&result, &outcome) {
            (Err(err), _) => {
                tracing::error!(error = %err, message_id = %reply.id, "cannot save the reply");
                Some(error_event(
                    "server_error",
                    "the server could not save the reply",
                ))
            }
            (Ok(()), Outcome::Completed) => Some(StreamEvent::Final(reply.clone())),
            (Ok(()), Outcome::RequiresAction) => Some(StreamEvent::RequiresAction {
                message_id: reply.id.clone(),
                tool_calls: pending_calls(&reply),
            }),
            (Ok(()), Outcome::Failed(message)) => {
                tracing::error!(message_id = %reply.id, error = %message, "engine failed");
                Some(error_event("server_error", message))
            }
            (Ok(()), Outcome::Shutdown) => Some(error_event(
                "server_shutting_down",
                "the server is shutting down; the partial reply was saved as incomplete",
            )),
            (Ok(()), Outcome::Cancelled) => None,
        };
        if let Some(last) = last
            && self.sender.send(last).await.is_ok()
        {
            let _ = self.sender.send(StreamEvent::Done).await;
        }
        Finished {
            message: reply,
            outcome,
        }
    }
}

fn pending_calls(reply: &Message) -> Vec<PendingToolCall> {
    reply
        .tool_calls
        .iter()
        .filter(|call| call.output.is_none())
        .map(|call| PendingToolCall {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        })
        .collect()
}

fn error_event(code: &str, message: &str) -> StreamEvent {
    StreamEvent::Error(ErrorBody {
        code: code.to_owned(),
        message: message.to_owned(),
        param: None,
        kind: "api_error".to_owned(),
    })
}
