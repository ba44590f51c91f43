//! Every input the app reacts to ([`Action`]), and every request it makes of the
//! runtime ([`Effect`]). Terminal events, task results and timer ticks all arrive as
//! actions; `App::update` turns them into state changes and effects.

use std::time::{Duration, Instant};

use crossterm::event::{KeyEvent, MouseEvent};

use crate::api::ApiError;
use crate::api::client::{RateLimit, RetryNotice};
use crate::api::types::{
    Assistant, AssistantCreate, AssistantUpdate, Message, Page, PendingToolCall, StreamEvent,
    Thread, ToolOutput,
};
use crate::config::ToolHandler;

/// A thread as the threads pane lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ThreadSummary {
    pub id: String,
    pub assistant_id: String,
    /// The first user message, or empty when the thread has none yet.
    pub title: String,
    pub created_at: String,
}

/// Where a thread list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadSource {
    Server,
    /// The server lacks `GET /v1/threads`; the list is the local index.
    LocalIndex,
}

/// An input to [`super::app::App::update`].
#[derive(Debug)]
pub enum Action {
    Key(KeyEvent),
    Paste(String),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// The timer: the current time and the client's rate-limit state.
    Tick {
        now: Instant,
        rate_limit: Option<RateLimit>,
    },
    AssistantsLoaded {
        offset: u32,
        result: Result<Page<Assistant>, ApiError>,
    },
    ThreadsLoaded {
        assistant_id: String,
        result: Result<(Vec<ThreadSummary>, ThreadSource), ApiError>,
    },
    MessagesLoaded {
        thread_id: String,
        result: Result<Vec<Message>, ApiError>,
    },
    ThreadCreated {
        assistant_id: String,
        result: Result<Thread, ApiError>,
    },
    /// The user message of a send was stored; the stream opens next.
    MessageSent {
        thread_id: String,
        result: Result<Message, ApiError>,
    },
    StreamEvent {
        stream_id: u64,
        event: Result<StreamEvent, ApiError>,
    },
    /// The stream ended without `[DONE]` or an error (the connection closed).
    StreamClosed {
        stream_id: u64,
    },
    Retrying(RetryNotice),
    AssistantSaved(Result<Assistant, ApiError>),
    AssistantDeleted {
        id: String,
        result: Result<(), ApiError>,
    },
    ThreadDeleted {
        id: String,
        result: Result<(), ApiError>,
    },
    ToolFinished {
        call_id: String,
        output: String,
        failed: bool,
    },
    ToolOutputsSubmitted(Result<(), ApiError>),
    /// The external editor returned the new draft, or an error message.
    DraftEdited(Result<String, String>),
    /// A file picked with `/attach PATH` or Ctrl+O was uploaded, or failed to.
    FileUploaded {
        path: String,
        result: Result<crate::api::types::File, ApiError>,
    },
    /// Unix signal or a closed terminal: leave now.
    Terminate,
}

/// A request from `update` to the runtime, which does the I/O and answers with actions.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    LoadAssistants {
        offset: u32,
        limit: u32,
    },
    LoadThreads {
        assistant_id: String,
    },
    LoadMessages {
        thread_id: String,
    },
    CreateAssistant(AssistantCreate),
    UpdateAssistant {
        id: String,
        body: AssistantUpdate,
    },
    DeleteAssistant {
        id: String,
    },
    CreateThread {
        assistant_id: String,
    },
    DeleteThread {
        id: String,
    },
    /// Posts the user message, then opens the reply stream as `stream_id`.
    Send {
        stream_id: u64,
        thread_id: String,
        assistant_id: String,
        content: String,
        /// Ids of the files attached to the message.
        attachments: Vec<String>,
    },
    /// Uploads a local file for the composer's next message.
    UploadFile {
        path: String,
    },
    OpenStream {
        stream_id: u64,
        thread_id: String,
        assistant_id: String,
        regenerate: bool,
    },
    CancelStream {
        stream_id: u64,
    },
    RunTool {
        call: PendingToolCall,
        handler: ToolHandler,
    },
    /// Posts tool outputs one by one, then reopens the stream as `stream_id`.
    SubmitToolOutputs {
        stream_id: u64,
        thread_id: String,
        assistant_id: String,
        outputs: Vec<ToolOutput>,
    },
    SaveDraft {
        thread_key: String,
        text: String,
    },
    SaveLastThread {
        assistant_id: String,
        thread_id: String,
    },
    IndexThread(ThreadSummary),
    ForgetThread {
        id: String,
    },
    EditExternally {
        text: String,
    },
    Quit,
}

/// How long a draft must stay unchanged before it is written.
pub const DRAFT_DEBOUNCE: Duration = Duration::from_millis(300);
