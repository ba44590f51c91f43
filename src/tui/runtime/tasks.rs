//! Effects carried out as spawned tasks. Each task talks to the API or the local store
//! and reports back through the event channel; none runs on the event loop itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

use crate::api::client::{EventStream, ThreadQuery};
use crate::api::types::{
    Message, MessageCreate, PendingToolCall, Role, StreamEvent, THREAD_ASSISTANT_KEY, ThreadCreate,
    ToolOutput,
};
use crate::api::{ApiError, Client};
use crate::config::ToolHandler;

use super::super::action::{Action, Effect, ThreadSource, ThreadSummary};
use super::store::{LastThread, LocalStore};

/// Threads fetched per list request.
const THREAD_PAGE: u32 = 100;
/// Message pages fetched at most when opening a thread (100 messages each).
const MAX_MESSAGE_PAGES: u32 = 200;
/// Threads whose title is looked up at once.
const TITLE_CONCURRENCY: usize = 4;
/// Threads whose title is looked up per list load.
const MAX_TITLE_LOOKUPS: usize = 50;

/// What tasks share.
#[derive(Clone)]
pub struct Tasks {
    pub client: Client,
    pub store: Arc<Mutex<LocalStore>>,
    pub events: UnboundedSender<Action>,
    streams: Arc<Mutex<HashMap<u64, AbortHandle>>>,
}

impl Tasks {
    pub fn new(client: Client, store: LocalStore, events: UnboundedSender<Action>) -> Self {
        Tasks {
            client,
            store: Arc::new(Mutex::new(store)),
            events,
            streams: Arc::default(),
        }
    }

    fn send(&self, action: Action) {
        // The loop is gone only while quitting, when results no longer matter.
        let _ = self.events.send(action);
    }

    fn with_store(&self, change: impl FnOnce(&mut LocalStore) -> std::io::Result<()>) {
        let result = match self.store.lock() {
            Ok(mut store) => change(&mut store),
            Err(_) => Err(std::io::Error::other("the local store lock is poisoned")),
        };
        if let Err(err) = result {
            tracing::warn!(%err, "cannot write local state in the data directory");
        }
    }

    /// Starts the task of one effect. Effects the loop handles itself (quit, the
    /// external editor) are ignored here.
    pub fn spawn(&self, effect: Effect) {
        match effect {
            Effect::SaveDraft { thread_key, text } => {
                self.with_store(|s| s.set_draft(&thread_key, &text))
            }
            Effect::SaveLastThread {
                assistant_id,
                thread_id,
            } => self.with_store(|s| {
                s.set_last_thread(LastThread {
                    assistant_id,
                    thread_id,
                })
            }),
            Effect::IndexThread(summary) => self.with_store(|s| s.index_thread(summary)),
            Effect::ForgetThread { id } => self.with_store(|s| s.forget_thread(&id)),
            Effect::CancelStream { stream_id } => self.cancel(stream_id),
            Effect::Quit | Effect::EditExternally { .. } => {}
            other => self.spawn_network(other),
        }
    }

    fn cancel(&self, stream_id: u64) {
        if let Ok(mut streams) = self.streams.lock()
            && let Some(handle) = streams.remove(&stream_id)
        {
            tracing::info!(stream_id, "cancelling the reply stream");
            handle.abort();
        }
    }

    fn spawn_network(&self, effect: Effect) {
        let tasks = self.clone();
        let stream_id = match &effect {
            Effect::Send { stream_id, .. }
            | Effect::OpenStream { stream_id, .. }
            | Effect::SubmitToolOutputs { stream_id, .. } => Some(*stream_id),
            _ => None,
        };
        let handle = tokio::spawn(async move { tasks.run(effect).await });
        if let Some(id) = stream_id
            && let Ok(mut streams) = self.streams.lock()
        {
            streams.retain(|_, handle| !handle.is_finished());
            streams.insert(id, handle.abort_handle());
        }
    }

    async fn run(self, effect: Effect) {
        let client = &self.client;
        match effect {
            Effect::LoadAssistants { offset, limit } => {
                let result = client.list_assistants(limit, offset).await;
                self.send(Action::AssistantsLoaded { offset, result });
            }
            Effect::LoadThreads { assistant_id } => {
                let result = self.load_threads(&assistant_id).await;
                self.send(Action::ThreadsLoaded {
                    assistant_id,
                    result,
                });
            }
            Effect::LoadMessages { thread_id } => {
                let result = self.load_messages(&thread_id).await;
                self.send(Action::MessagesLoaded { thread_id, result });
            }
            Effect::CreateAssistant(body) => {
                self.send(Action::AssistantSaved(client.create_assistant(&body).await))
            }
            Effect::UpdateAssistant { id, body } => self.send(Action::AssistantSaved(
                client.update_assistant(&id, &body).await,
            )),
            Effect::DeleteAssistant { id } => {
                let result = client.delete_assistant(&id).await.map(drop);
                self.send(Action::AssistantDeleted { id, result });
            }
            Effect::DeleteThread { id } => {
                let result = client.delete_thread(&id).await.map(drop);
                self.send(Action::ThreadDeleted { id, result });
            }
            Effect::CreateThread { assistant_id } => {
                let metadata = [(THREAD_ASSISTANT_KEY.to_owned(), assistant_id.clone())].into();
                let result = client.create_thread(&ThreadCreate { metadata }).await;
                self.send(Action::ThreadCreated {
                    assistant_id,
                    result,
                });
            }
            Effect::Send {
                stream_id,
                thread_id,
                assistant_id,
                content,
                attachments,
            } => {
                let mut message = MessageCreate::user(content);
                message.attachments = attachments
                    .into_iter()
                    .map(|file_id| crate::api::types::Attachment {
                        kind: "file".to_owned(),
                        file_id,
                    })
                    .collect();
                let result = client.create_message(&thread_id, &message).await;
                let sent = result.is_ok();
                self.send(Action::MessageSent {
                    thread_id: thread_id.clone(),
                    result,
                });
                if sent {
                    self.stream(stream_id, &thread_id, &assistant_id, false)
                        .await;
                }
            }
            Effect::UploadFile { path } => {
                let local = std::path::Path::new(&path);
                let result = client
                    .upload_path(local, crate::api::types::PURPOSE_ASSISTANTS)
                    .await;
                self.send(Action::FileUploaded { path, result });
            }
            Effect::OpenStream {
                stream_id,
                thread_id,
                assistant_id,
                regenerate,
            } => {
                self.stream(stream_id, &thread_id, &assistant_id, regenerate)
                    .await;
            }
            Effect::SubmitToolOutputs {
                stream_id,
                thread_id,
                assistant_id,
                outputs,
            } => {
                let result = self.submit(&thread_id, &outputs).await;
                let ok = result.is_ok();
                self.send(Action::ToolOutputsSubmitted(result));
                if ok {
                    self.stream(stream_id, &thread_id, &assistant_id, false)
                        .await;
                }
            }
            Effect::RunTool { call, handler } => self.run_tool(call, handler).await,
            _ => {}
        }
    }

    async fn submit(&self, thread_id: &str, outputs: &[ToolOutput]) -> Result<(), ApiError> {
        for output in outputs {
            self.client.submit_tool_output(thread_id, output).await?;
        }
        Ok(())
    }

    /// Opens the reply stream and forwards its events until `[DONE]`, an error, or
    /// cancellation (which aborts this task and drops the connection).
    async fn stream(&self, stream_id: u64, thread_id: &str, assistant_id: &str, regenerate: bool) {
        // A reply may bring a code block; its highlighting should not stall a frame.
        crate::tui::text::preload_highlighting();
        let mut events: EventStream = match self
            .client
            .stream(thread_id, assistant_id, regenerate)
            .await
        {
            Ok(events) => events,
            Err(err) => {
                self.send(Action::StreamEvent {
                    stream_id,
                    event: Err(err),
                });
                return;
            }
        };
        while let Some(event) = events.next().await {
            let last = matches!(
                event,
                Ok(StreamEvent::Done) | Ok(StreamEvent::Error(_)) | Err(_)
            );
            let done = matches!(event, Ok(StreamEvent::Done));
            self.send(Action::StreamEvent { stream_id, event });
            if last {
                if !done {
                    self.send(Action::StreamClosed { stream_id });
                }
                return;
            }
        }
        self.send(Action::StreamClosed { stream_id });
    }

    async fn run_tool(&self, call: PendingToolCall, handler: ToolHandler) {
        tracing::info!(tool = %call.name, call_id = %call.id, "running a tool handler");
        let (output, failed) = match crate::tools::handlers::run_handler(&handler, &call).await {
            Ok(output) => (output, false),
            Err(err) => {
                tracing::warn!(tool = %call.name, %err, "tool handler failed");
                (format!("the tool handler failed: {err}"), true)
            }
        };
        self.send(Action::ToolFinished {
            call_id: call.id,
            output,
            failed,
        });
    }

    async fn load_messages(&self, thread_id: &str) -> Result<Vec<Message>, ApiError> {
        let mut messages = Vec::new();
        for page in 0..MAX_MESSAGE_PAGES {
            let batch = self
                .client
                .list_messages(thread_id, 100, page * 100)
                .await?;
            messages.extend(batch.data);
            if !batch.has_more {
                break;
            }
        }
        Ok(messages)
    }

    /// Lists an assistant's threads from the server, or from the local index when
    /// the server has no thread listing. Titles come from the index, or from the
    /// first user message of each thread.
    async fn load_threads(
        &self,
        assistant_id: &str,
    ) -> Result<(Vec<ThreadSummary>, ThreadSource), ApiError> {
        let query = ThreadQuery {
            limit: Some(THREAD_PAGE),
            offset: None,
            assistant_id: Some(assistant_id.to_owned()),
        };
        let page = match self.client.list_threads(&query).await {
            Ok(page) => page,
            Err(err) if err.is_unsupported_endpoint() => {
                tracing::info!(
                    code = err.code(),
                    "the server cannot list threads; using the local index"
                );
                let threads = self
                    .store
                    .lock()
                    .map(|s| s.threads_of(assistant_id))
                    .unwrap_or_default();
                return Ok((threads, ThreadSource::LocalIndex));
            }
            Err(err) => return Err(err),
        };
        let known: HashMap<String, String> = match self.store.lock() {
            Ok(store) => page
                .data
                .iter()
                .filter_map(|t| {
                    store
                        .title_of(&t.id)
                        .map(|title| (t.id.clone(), title.to_owned()))
                })
                .collect(),
            Err(_) => HashMap::new(),
        };
        let lookups: Vec<String> = page
            .data
            .iter()
            .filter(|t| !known.contains_key(&t.id))
            .take(MAX_TITLE_LOOKUPS)
            .map(|t| t.id.clone())
            .collect();
        let found: HashMap<String, String> = stream::iter(lookups)
            .map(|id| async move {
                let title = self.first_user_message(&id).await;
                (id, title)
            })
            .buffer_unordered(TITLE_CONCURRENCY)
            .collect()
            .await;
        let summaries: Vec<ThreadSummary> = page
            .data
            .into_iter()
            .map(|thread| {
                let title = known
                    .get(&thread.id)
                    .or_else(|| found.get(&thread.id))
                    .cloned()
                    .unwrap_or_default();
                ThreadSummary {
                    id: thread.id,
                    assistant_id: assistant_id.to_owned(),
                    title,
                    created_at: thread.created_at,
                }
            })
            .collect();
        for summary in summaries
            .iter()
            .filter(|s| found.contains_key(&s.id) && !s.title.is_empty())
        {
            self.with_store(|s| s.index_thread(summary.clone()));
        }
        Ok((summaries, ThreadSource::Server))
    }

    async fn first_user_message(&self, thread_id: &str) -> String {
        match self.client.list_messages(thread_id, 10, 0).await {
            Ok(page) => page
                .data
                .into_iter()
                .find(|m| m.role == Role::User)
                .map(|m| super::super::app::first_line(&m.content))
                .unwrap_or_default(),
            Err(err) => {
                tracing::debug!(
                    thread_id,
                    code = err.code(),
                    "cannot read the first message of a thread"
                );
                String::new()
            }
        }
    }
}
