//! One reply: the prompt from the thread, trimmed to the context window, then the
//! token loop that streams text until a stop token, the window's end, or cancellation.

use std::time::Instant;

use anyhow::Result;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

use super::Loaded;
use super::sample::{Sampling, sample};
use super::template::ChatMessage;
use crate::api::types::{Message, Role, ToolCallStatus};

/// Prompt tokens run per forward call; cancellation is checked between chunks.
const PREFILL_CHUNK: usize = 128;

/// How generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
    Cancelled,
}

/// Figures of one reply, for logs and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timings {
    pub prompt_tokens: usize,
    /// Prompt tokens actually computed (the rest came from the cache).
    pub prefilled: usize,
    pub generated: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
    pub finish: Finish,
}

/// Turns the thread into chat messages, with the instructions as the system message.
///
/// Tool results the server produced before any reply text (such as the passages a
/// `knowledge_base` search found for the question) go in front of the user's
/// message they answer, where a small model reads them as context for it; other tool
/// results follow the assistant text that called them.
pub fn chat_messages(instructions: &str, messages: &[Message]) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(messages.len() + 1);
    if !instructions.trim().is_empty() {
        out.push(ChatMessage {
            role: "system".into(),
            content: instructions.to_owned(),
        });
    }
    for message in messages {
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
            Role::Tool => "user",
            Role::Unknown => continue,
        };
        if role == "assistant"
            && message.content.trim().is_empty()
            && let Some(context) = tool_context(message)
            && let Some(user) = out.last_mut().filter(|m| m.role == "user")
        {
            user.content = format!("{context}\n\n{}", user.content);
            continue;
        }
        let mut content = message.content.clone();
        for call in &message.tool_calls {
            if let (Some(output), ToolCallStatus::Completed | ToolCallStatus::Failed) =
                (&call.output, call.status)
            {
                content.push_str(&format!("\n[{} returned: {output}]", call.name));
            }
        }
        if content.trim().is_empty() {
            continue;
        }
        out.push(ChatMessage {
            role: role.into(),
            content,
        });
    }
    out
}

/// The finished tool results of a message as context text, `None` when it has none.
fn tool_context(message: &Message) -> Option<String> {
    let parts: Vec<String> = message
        .tool_calls
        .iter()
        .filter(|call| {
            matches!(
                call.status,
                ToolCallStatus::Completed | ToolCallStatus::Failed
            )
        })
        .filter_map(|call| {
            let output = call.output.as_deref()?;
            Some(match call.name.as_str() {
                "knowledge_base" => {
                    format!("Answer using these passages from my documents:\n{output}")
                }
                name => format!("Result of {name}:\n{output}"),
            })
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// Renders and tokenizes the conversation, dropping the oldest turns (never the
/// system message nor the last one) until the prompt leaves room for a reply.
pub fn fit_prompt(
    loaded: &Loaded,
    mut messages: Vec<ChatMessage>,
    capacity: usize,
) -> Result<Vec<u32>> {
    let budget = capacity - reply_reserve(capacity);
    let mut dropped = 0;
    loop {
        let text = loaded.template.render(&messages)?;
        let mut tokens = loaded.tokenizer.encode(&text)?;
        if loaded.add_bos {
            if let Some(bos) = loaded.tokenizer.bos {
                if tokens.first() != Some(&bos) {
                    tokens.insert(0, bos);
                }
            }
        }
        let first = usize::from(messages.first().is_some_and(|m| m.role == "system"));
        if tokens.len() <= budget || messages.len() <= first + 1 {
            if dropped > 0 {
                tracing::info!(
                    dropped,
                    kept = messages.len(),
                    "thread too long for the context window; dropped the oldest messages"
                );
            }
            if tokens.len() > budget {
                tracing::warn!(
                    tokens = tokens.len(),
                    budget,
                    "last message alone exceeds the context window; keeping its end"
                );
                tokens.drain(..tokens.len() - budget);
            }
            return Ok(tokens);
        }
        messages.remove(first);
        dropped += 1;
    }
}

/// Tokens kept free for the reply.
pub fn reply_reserve(capacity: usize) -> usize {
    (capacity / 4).clamp(1, 512)
}

/// Runs the prompt and streams the reply's text pieces to `emit`, which returns false
/// when nobody listens any more.
pub fn generate(
    loaded: &mut Loaded,
    prompt: &[u32],
    sampling: Sampling,
    cancel: &CancellationToken,
    emit: &mut dyn FnMut(String) -> bool,
) -> Result<Timings> {
    let started = Instant::now();
    let reuse = loaded.model.reusable_prefix(prompt);
    loaded.model.truncate(reuse);
    let mut logits = Vec::new();
    for chunk in prompt[reuse..].chunks(PREFILL_CHUNK) {
        if cancel.is_cancelled() {
            return Ok(timings(
                prompt.len(),
                0,
                0,
                started,
                None,
                Finish::Cancelled,
            ));
        }
        logits = loaded.model.forward(chunk)?;
    }
    let prefill_done = Instant::now();
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let room = loaded.model.capacity().saturating_sub(prompt.len());
    let mut decoder = loaded.tokenizer.tokenizer.decode_stream(true);
    let mut generated = 0;
    let mut finish = Finish::Length;
    while generated < room {
        if cancel.is_cancelled() {
            finish = Finish::Cancelled;
            break;
        }
        let next = sample(&logits, sampling, &mut rng);
        if loaded.tokenizer.stop_ids.contains(&next) {
            finish = Finish::Stop;
            break;
        }
        generated += 1;
        if let Ok(Some(text)) = decoder.step(next) {
            if !emit(text) {
                finish = Finish::Cancelled;
                break;
            }
        }
        if generated < room {
            logits = loaded.model.forward(&[next])?;
        }
    }
    let timing = timings(
        prompt.len(),
        prompt.len() - reuse,
        generated,
        started,
        Some(prefill_done),
        finish,
    );
    tracing::info!(?timing, "reply generated");
    Ok(timing)
}

fn timings(
    prompt_tokens: usize,
    prefilled: usize,
    generated: usize,
    started: Instant,
    prefill_done: Option<Instant>,
    finish: Finish,
) -> Timings {
    let prefill_done = prefill_done.unwrap_or_else(Instant::now);
    Timings {
        prompt_tokens,
        prefilled,
        generated,
        prefill_secs: prefill_done.duration_since(started).as_secs_f64(),
        decode_secs: prefill_done.elapsed().as_secs_f64(),
        finish,
    }
}
