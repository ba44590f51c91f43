//! The open thread: sending, the reply stream, tool approval, and the dialogs.

use crate::api::ApiError;
use crate::api::types::{
    Message, MessageStatus, PendingToolCall, Role, StreamEvent, ToolCallRecord, ToolCallStatus,
    ToolOutput,
};
use crate::config::Approval;

use super::super::action::{Action, Effect};
use super::super::keys::Command;
use super::super::transcript::{ActiveReply, Entry, Scroll};
use super::{App, Dialog, Focus, StreamState, ToolRun};

/// Output sent for a call the user declined.
pub const DECLINED_OUTPUT: &str = "declined by the user";

impl App {
    /// Dispatches task results.
    pub(super) fn on_result(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::AssistantsLoaded { offset, result } => {
                self.on_assistants_loaded(offset, result)
            }
            Action::ThreadsLoaded {
                assistant_id,
                result,
            } => self.on_threads_loaded(assistant_id, result),
            Action::MessagesLoaded { thread_id, result } => {
                self.on_messages_loaded(&thread_id, result)
            }
            Action::ThreadCreated {
                assistant_id,
                result,
            } => self.on_thread_created(&assistant_id, result),
            Action::MessageSent { thread_id, result } => self.on_message_sent(&thread_id, result),
            Action::StreamEvent { stream_id, event } => self.on_stream_event(stream_id, event),
            Action::StreamClosed { stream_id } => self.on_stream_closed(stream_id),
            Action::AssistantSaved(result) => self.on_assistant_saved(result),
            Action::AssistantDeleted { id, result } => self.on_deleted_assistant(&id, result),
            Action::ThreadDeleted { id, result } => self.on_deleted_thread(&id, result),
            Action::ToolFinished {
                call_id,
                output,
                failed,
            } => self.on_tool_finished(&call_id, output, failed),
            Action::ToolOutputsSubmitted(result) => {
                if let Err(err) = result {
                    self.show_error("posting tool outputs", &err);
                    self.stream = None;
                }
                Vec::new()
            }
            Action::DraftEdited(result) => self.on_draft_edited(result),
            Action::FileUploaded { path, result } => self.on_file_uploaded(&path, result),
            _ => Vec::new(),
        }
    }

    pub(super) fn history_command(&mut self, command: Command) -> Vec<Effect> {
        let page = (self.areas().main.height.saturating_sub(3) as isize).max(1);
        match command {
            Command::Up => self.scroll_history(-1),
            Command::Down => self.scroll_history(1),
            Command::PageUp => self.scroll_history(-page),
            Command::PageDown => self.scroll_history(page),
            Command::Top => {
                let (width, height) = self.history_view();
                self.transcript.scroll_to_top(width, height, &self.styles);
            }
            Command::Bottom => self.transcript.follow(),
            Command::Toggle => {
                let (width, height) = self.history_view();
                self.transcript.toggle_selected(width, height, &self.styles);
            }
            Command::NextTool | Command::PrevTool => {
                let step = if command == Command::NextTool { 1 } else { -1 };
                let (width, height) = self.history_view();
                self.transcript
                    .select_tool(step, width, height, &self.styles);
            }
            _ => {}
        }
        Vec::new()
    }

    /// Returns the inner width and height of the history pane.
    pub fn history_view(&self) -> (u16, u16) {
        let main = self.areas().main;
        (
            main.width.saturating_sub(2).max(1),
            main.height.saturating_sub(2).max(1),
        )
    }

    pub(super) fn scroll_history(&mut self, delta: isize) {
        let (width, height) = self.history_view();
        self.transcript
            .scroll_by(delta, width, height, &self.styles);
    }

    /// Ctrl+N, or `n` in the threads pane: a new thread with the selected assistant.
    pub(super) fn new_thread(&mut self) -> Vec<Effect> {
        let Some(assistant) = self.assistants.selected() else {
            self.show_local_error(
                "no_assistant",
                "select or create an assistant first (n in the assistants pane)".to_owned(),
            );
            return Vec::new();
        };
        let assistant_id = assistant.id.clone();
        let mut effects = self.composer.flush_draft();
        self.transcript = Default::default();
        self.focus = Focus::Composer;
        self.composer.switch_thread(&format!("new:{assistant_id}"));
        effects.push(Effect::CreateThread { assistant_id });
        effects
    }

    pub(super) fn open_selected_thread(&mut self) -> Vec<Effect> {
        let Some(thread) = self.threads.selected().cloned() else {
            return Vec::new();
        };
        let mut effects = self.composer.flush_draft();
        effects.extend(self.stop_stream().unwrap_or_default());
        self.transcript = Default::default();
        self.transcript.thread_id = Some(thread.id.clone());
        self.transcript.loading = true;
        self.composer.switch_thread(&thread.id);
        self.focus = Focus::Composer;
        effects.push(Effect::LoadMessages {
            thread_id: thread.id.clone(),
        });
        effects.push(Effect::SaveLastThread {
            assistant_id: thread.assistant_id.clone(),
            thread_id: thread.id,
        });
        effects
    }

    fn on_thread_created(
        &mut self,
        assistant_id: &str,
        result: Result<crate::api::types::Thread, ApiError>,
    ) -> Vec<Effect> {
        let thread = match result {
            Ok(thread) => thread,
            Err(err) => {
                self.show_error("creating a thread", &err);
                return Vec::new();
            }
        };
        let summary = self.summary(&thread.id, assistant_id, "", &thread.created_at);
        if self.threads.assistant_id.as_deref() == Some(assistant_id) {
            self.threads.upsert(summary.clone());
            self.threads.selected = 0;
        }
        self.transcript.thread_id = Some(thread.id.clone());
        let mut effects = self
            .composer
            .adopt_new_thread(&format!("new:{assistant_id}"), &thread.id);
        effects.push(Effect::IndexThread(summary));
        effects.push(Effect::SaveLastThread {
            assistant_id: assistant_id.to_owned(),
            thread_id: thread.id.clone(),
        });
        if let Some(content) = self.composer.queued.take() {
            effects.extend(self.start_send(thread.id, assistant_id.to_owned(), content));
        }
        effects
    }

    fn on_messages_loaded(
        &mut self,
        thread_id: &str,
        result: Result<Vec<Message>, ApiError>,
    ) -> Vec<Effect> {
        if self.transcript.thread_id.as_deref() != Some(thread_id) {
            return Vec::new();
        }
        self.transcript.loading = false;
        match result {
            Ok(messages) => {
                self.composer.last_sent = messages
                    .iter()
                    .rev()
                    .find(|m| m.role == Role::User)
                    .map(|m| m.content.clone());
                self.transcript.entries = messages.into_iter().map(Entry::new).collect();
                self.transcript.follow();
            }
            Err(err) => self.show_error("loading messages", &err),
        }
        Vec::new()
    }

    /// Enter in the composer.
    pub(super) fn send(&mut self) -> Vec<Effect> {
        let content = self.composer.text();
        if content.trim().is_empty() {
            return Vec::new();
        }
        if self.stream.is_some() || self.tool_run.is_some() {
            self.show_local_error(
                super::BUSY,
                "a reply is still running; press Esc to stop it first".to_owned(),
            );
            return Vec::new();
        }
        let Some(assistant_id) = self.assistants.selected().map(|a| a.id.clone()) else {
            self.show_local_error(
                "no_assistant",
                "select or create an assistant first (n in the assistants pane)".to_owned(),
            );
            return Vec::new();
        };
        let clear_draft = self.composer.take_for_send();
        let mut effects = match self.transcript.thread_id.clone() {
            Some(thread_id) => self.start_send(thread_id, assistant_id, content),
            None => {
                self.composer.queued = Some(content);
                self.transcript = Default::default();
                vec![Effect::CreateThread { assistant_id }]
            }
        };
        effects.insert(0, clear_draft);
        effects
    }

    fn start_send(
        &mut self,
        thread_id: String,
        assistant_id: String,
        content: String,
    ) -> Vec<Effect> {
        let stream_id = self.new_stream(&thread_id, &assistant_id);
        self.composer.pending = Some(content.clone());
        self.transcript.follow();
        let mut effects = Vec::new();
        if self
            .threads
            .items
            .iter()
            .any(|t| t.id == thread_id && t.title.is_empty())
        {
            let created_at = self
                .threads
                .items
                .iter()
                .find(|t| t.id == thread_id)
                .map(|t| t.created_at.clone())
                .unwrap_or_default();
            let summary = self.summary(
                &thread_id,
                &assistant_id,
                &first_line(&content),
                &created_at,
            );
            if let Some(item) = self.threads.items.iter_mut().find(|t| t.id == thread_id) {
                item.title = summary.title.clone();
            }
            effects.push(Effect::IndexThread(summary));
        }
        effects.push(Effect::Send {
            stream_id,
            thread_id,
            assistant_id,
            content,
            attachments: self.composer.sending_ids(),
        });
        effects
    }

    fn new_stream(&mut self, thread_id: &str, assistant_id: &str) -> u64 {
        let id = self.next_stream_id;
        self.next_stream_id += 1;
        self.stream = Some(StreamState {
            id,
            thread_id: thread_id.to_owned(),
            assistant_id: assistant_id.to_owned(),
            connecting: true,
        });
        id
    }

    fn on_message_sent(
        &mut self,
        thread_id: &str,
        result: Result<Message, ApiError>,
    ) -> Vec<Effect> {
        let pending = self.composer.pending.take();
        match result {
            Ok(message) => {
                if self.transcript.thread_id.as_deref() == Some(thread_id) {
                    self.transcript.entries.push(Entry::new(message));
                    self.transcript.active = Some(ActiveReply::new(self.now));
                    self.transcript.note_new_text();
                }
                if let Some(stream) = &mut self.stream {
                    stream.connecting = false;
                }
            }
            Err(err) => {
                self.show_error("sending the message", &err);
                self.stream = None;
                if let Some(content) = pending {
                    self.composer.restore(&content, self.now);
                }
            }
        }
        Vec::new()
    }

    /// Ctrl+R: replace the last reply.
    pub(super) fn regenerate(&mut self) -> Vec<Effect> {
        if self.stream.is_some() {
            return Vec::new();
        }
        let (Some(thread_id), Some(assistant_id)) = (
            self.transcript.thread_id.clone(),
            self.assistants.selected().map(|a| a.id.clone()),
        ) else {
            return Vec::new();
        };
        if self
            .transcript
            .entries
            .last()
            .is_some_and(|e| e.message.role != Role::User)
        {
            self.transcript.entries.pop();
        }
        let stream_id = self.new_stream(&thread_id, &assistant_id);
        self.error = None;
        self.transcript.active = Some(ActiveReply::new(self.now));
        self.transcript.follow();
        vec![Effect::OpenStream {
            stream_id,
            thread_id,
            assistant_id,
            regenerate: true,
        }]
    }

    /// Stops the running stream, keeping the partial reply marked as stopped.
    pub(super) fn stop_stream(&mut self) -> Option<Vec<Effect>> {
        let stream = self.stream.take()?;
        self.finish_active(MessageStatus::Incomplete, Some("stopped"));
        if let Some(content) = self.composer.pending.take() {
            self.composer.restore(&content, self.now);
        }
        Some(vec![Effect::CancelStream {
            stream_id: stream.id,
        }])
    }

    fn finish_active(&mut self, status: MessageStatus, note: Option<&str>) {
        let Some(active) = self.transcript.active.take() else {
            return;
        };
        if active.content.is_empty() && active.tool_calls.is_empty() && note.is_none() {
            return;
        }
        let thread_id = self.transcript.thread_id.clone().unwrap_or_default();
        let message = active.into_message(&thread_id, status);
        let entry = match note {
            Some(note) => Entry::with_note(message, note),
            None => Entry::new(message),
        };
        self.transcript.entries.push(entry);
    }

    fn on_stream_event(
        &mut self,
        stream_id: u64,
        event: Result<StreamEvent, ApiError>,
    ) -> Vec<Effect> {
        if self.stream.as_ref().map(|s| s.id) != Some(stream_id) {
            return Vec::new();
        }
        if let Some(stream) = &mut self.stream {
            stream.connecting = false;
        }
        self.retry = None;
        let event = match event {
            Ok(event) => event,
            Err(err) => return self.on_stream_failed(&err),
        };
        let active = self
            .transcript
            .active
            .get_or_insert_with(|| ActiveReply::new(self.now));
        match event {
            StreamEvent::Delta { id, content } => {
                if active.message_id.is_empty() {
                    active.message_id = id;
                }
                active.content.push_str(&content);
                active.tokens += 1;
            }
            StreamEvent::ToolCall {
                id,
                name,
                arguments,
                status,
                ..
            } => {
                active.tool_calls.push(ToolCallRecord {
                    id,
                    name,
                    arguments,
                    status,
                    output: None,
                });
            }
            StreamEvent::ToolResult {
                tool_call_id,
                output,
                status,
                ..
            } => {
                if let Some(call) = self.transcript.tool_call_mut(&tool_call_id) {
                    call.output = Some(output);
                    call.status = status;
                }
            }
            StreamEvent::RequiresAction { tool_calls, .. } => {
                return self.on_requires_action(tool_calls);
            }
            StreamEvent::Final(message) => {
                self.transcript.active = None;
                if self
                    .transcript
                    .entries
                    .last()
                    .is_some_and(|e| e.message.id == message.id)
                {
                    self.transcript.entries.pop();
                }
                self.transcript.entries.push(Entry::new(message));
            }
            StreamEvent::Error(body) => {
                let err = ApiError::from_body(500, body, None);
                return self.on_stream_failed(&err);
            }
            StreamEvent::Done => return self.on_stream_done(),
        }
        self.transcript.note_new_text();
        Vec::new()
    }

    fn on_stream_done(&mut self) -> Vec<Effect> {
        let status = if self.tool_run.is_some() {
            MessageStatus::RequiresAction
        } else {
            MessageStatus::Completed
        };
        self.finish_active(status, None);
        self.stream = None;
        self.transcript.note_new_text();
        self.next_tool()
    }

    fn on_stream_closed(&mut self, stream_id: u64) -> Vec<Effect> {
        if self.stream.as_ref().map(|s| s.id) != Some(stream_id) {
            return Vec::new();
        }
        let err = ApiError::Transport("the connection closed before the reply finished".to_owned());
        self.on_stream_failed(&err)
    }

    fn on_stream_failed(&mut self, err: &ApiError) -> Vec<Effect> {
        self.show_error("streaming the reply", err);
        if let Some(shown) = &mut self.error {
            shown.message = format!("{}; press Ctrl+R to retry", shown.message);
        }
        self.finish_active(MessageStatus::Incomplete, Some("connection lost"));
        self.stream = None;
        Vec::new()
    }

    fn on_requires_action(&mut self, calls: Vec<PendingToolCall>) -> Vec<Effect> {
        let Some(stream) = &self.stream else {
            return Vec::new();
        };
        if let Some(active) = &mut self.transcript.active {
            for call in &calls {
                if !active.tool_calls.iter().any(|c| c.id == call.id) {
                    active.tool_calls.push(ToolCallRecord {
                        id: call.id.clone(),
                        name: call.name.clone(),
                        arguments: call.arguments.clone(),
                        status: ToolCallStatus::RequiresAction,
                        output: None,
                    });
                }
            }
        }
        self.tool_run = Some(ToolRun {
            thread_id: stream.thread_id.clone(),
            assistant_id: stream.assistant_id.clone(),
            queue: calls,
            outputs: Vec::new(),
            running: None,
        });
        Vec::new()
    }

    /// Starts the next queued tool call, or posts the outputs when none is left.
    /// Runs only once the stream that asked for them has ended.
    fn next_tool(&mut self) -> Vec<Effect> {
        if self.stream.is_some() {
            return Vec::new();
        }
        let Some(run) = &mut self.tool_run else {
            return Vec::new();
        };
        if run.running.is_some()
            || !self
                .dialogs
                .iter()
                .all(|d| !matches!(d, Dialog::ToolApproval { .. }))
        {
            return Vec::new();
        }
        if run.queue.is_empty() {
            let run = self.tool_run.take();
            return run.map(|run| self.submit_outputs(run)).unwrap_or_default();
        }
        let call = run.queue.remove(0);
        match self.tools.get(&call.name) {
            None => {
                let message = format!(
                    "no handler is configured for tool {:?}; add [tools.{}] to config.toml",
                    call.name, call.name
                );
                self.show_local_error("tool_not_configured", message.clone());
                self.tool_done(&call.id, message, true)
            }
            Some(handler)
                if handler.approval == Approval::Always
                    || self.always_allowed.contains(&call.name) =>
            {
                self.run_tool(call)
            }
            Some(_) => {
                self.dialogs.push(Dialog::ToolApproval { call });
                Vec::new()
            }
        }
    }

    fn run_tool(&mut self, call: PendingToolCall) -> Vec<Effect> {
        let Some(handler) = self.tools.get(&call.name).cloned() else {
            return Vec::new();
        };
        if let Some(run) = &mut self.tool_run {
            run.running = Some(call.id.clone());
        }
        if let Some(record) = self.transcript.tool_call_mut(&call.id) {
            record.status = ToolCallStatus::InProgress;
        }
        vec![Effect::RunTool { call, handler }]
    }

    fn on_tool_finished(&mut self, call_id: &str, output: String, failed: bool) -> Vec<Effect> {
        if let Some(run) = &mut self.tool_run
            && run.running.as_deref() == Some(call_id)
        {
            run.running = None;
        }
        self.tool_done(call_id, output, failed)
    }

    fn tool_done(&mut self, call_id: &str, output: String, failed: bool) -> Vec<Effect> {
        if let Some(record) = self.transcript.tool_call_mut(call_id) {
            record.output = Some(output.clone());
            record.status = if failed {
                ToolCallStatus::Failed
            } else {
                ToolCallStatus::Completed
            };
        }
        if let Some(run) = &mut self.tool_run {
            run.outputs.push(ToolOutput {
                tool_call_id: call_id.to_owned(),
                output,
            });
        }
        self.next_tool()
    }

    fn submit_outputs(&mut self, run: ToolRun) -> Vec<Effect> {
        let stream_id = self.new_stream(&run.thread_id, &run.assistant_id);
        let mut active = ActiveReply::new(self.now);
        // The server continues the same reply: keep its text and tool calls growing.
        if self
            .transcript
            .entries
            .last()
            .is_some_and(|e| e.message.status == MessageStatus::RequiresAction)
        {
            if let Some(entry) = self.transcript.entries.pop() {
                let message = entry.message;
                active.message_id = message.id;
                active.content = message.content;
                active.tool_calls = message.tool_calls;
                active.created_at = message.created_at;
            }
        }
        self.transcript.active = Some(active);
        vec![Effect::SubmitToolOutputs {
            stream_id,
            thread_id: run.thread_id,
            assistant_id: run.assistant_id,
            outputs: run.outputs,
        }]
    }

    /// y, a and n in a dialog.
    pub(super) fn dialog_command(&mut self, command: Command) -> Vec<Effect> {
        let Some(dialog) = self.dialogs.last().cloned() else {
            return Vec::new();
        };
        let answer = match command {
            Command::Yes => Answer::Yes,
            Command::Always => Answer::Always,
            Command::No => Answer::No,
            _ => return Vec::new(),
        };
        self.dialogs.pop();
        match (dialog, answer) {
            (Dialog::DeleteAssistant { id, .. }, Answer::Yes) => {
                vec![Effect::DeleteAssistant { id }]
            }
            (Dialog::DeleteThread { id, .. }, Answer::Yes) => vec![Effect::DeleteThread { id }],
            (Dialog::DiscardChanges, Answer::Yes) => {
                self.editor = None;
                self.focus = Focus::Assistants;
                Vec::new()
            }
            (Dialog::ToolApproval { call }, Answer::Yes) => self.run_tool(call),
            (Dialog::ToolApproval { call }, Answer::Always) => {
                self.always_allowed.insert(call.name.clone());
                self.run_tool(call)
            }
            (Dialog::ToolApproval { call }, Answer::No) => {
                self.tool_done(&call.id, DECLINED_OUTPUT.to_owned(), true)
            }
            (dialog, Answer::Always) => {
                self.dialogs.push(dialog);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Esc on a dialog: a tool approval counts as declined.
    pub(super) fn dialog_closed(&mut self, dialog: Dialog) -> Vec<Effect> {
        match dialog {
            Dialog::ToolApproval { call } => {
                self.tool_done(&call.id, DECLINED_OUTPUT.to_owned(), true)
            }
            _ => Vec::new(),
        }
    }

    /// True when the view is pinned above the bottom.
    pub fn scrolled_up(&self) -> bool {
        self.transcript.scroll != Scroll::Follow
    }
}

enum Answer {
    Yes,
    Always,
    No,
}

/// Returns the first non-empty line of `text`, as a thread title.
pub fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default()
        .chars()
        .take(80)
        .collect()
}
