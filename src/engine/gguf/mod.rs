//! The embedded model engine (`--engine gguf`): a llama-architecture GGUF model run
//! in process on the CPU with candle.
//!
//! The model loads on a background thread as soon as the engine is built, so the
//! server answers at once; [`GgufEngine::status`] says "loading model" until it is
//! ready, and a reply asked for meanwhile waits for the load. Each reply runs on its
//! own worker thread and streams every token's text through a channel as soon as it
//! is sampled; cancelling the token stops the worker before the next step.

mod forward;
mod generate;
mod matmul;
mod meta;
mod requant;
mod sample;
mod template;
mod tokenizer;
mod weights;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use candle_core::quantized::gguf_file::Content;
use tokio_util::sync::CancellationToken;

pub use forward::Transformer;
pub use generate::{Finish, Timings, chat_messages, fit_prompt, generate};
pub use sample::{Sampling, argmax, sample};
pub use template::{ChatMessage, ChatTemplate};
pub use tokenizer::GgufTokenizer;
pub use weights::{Hyper, to_fast_format};

use super::{Engine, EngineEvent, EngineRequest, EngineStream};

/// The name `--engine` selects this engine by.
pub const NAME: &str = "gguf";

/// Most positions the key/value cache holds, whatever the model was trained with.
pub const MAX_CONTEXT: usize = 4096;

/// Whether the model can answer yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelStatus {
    Loading,
    Ready,
    Failed(String),
}

impl std::fmt::Display for ModelStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelStatus::Loading => f.write_str("loading model"),
            ModelStatus::Ready => f.write_str("ready"),
            ModelStatus::Failed(err) => write!(f, "model failed to load: {err}"),
        }
    }
}

/// A loaded model with its tokenizer and chat template.
pub struct Loaded {
    pub model: Transformer,
    pub tokenizer: GgufTokenizer,
    pub template: ChatTemplate,
    /// Whether the file asks for a BOS token in front of every prompt.
    pub add_bos: bool,
    /// How long loading took.
    pub load_time: Duration,
}

impl Loaded {
    /// Loads a GGUF file; `max_context` caps the key/value cache.
    pub fn load(path: &Path, max_context: usize) -> Result<Self> {
        let started = Instant::now();
        crate::model::check_model_file(path)?;
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open model file {}", path.display()))?;
        // The metadata is about 100,000 small strings: unbuffered, each would cost
        // two read system calls.
        let content = Content::read(&mut std::io::BufReader::new(file)).map_err(|err| {
            anyhow!(
                "{} is not a readable GGUF file ({err}); run `assisters model fetch` to \
                 download the default model again, or pass `--model PATH`",
                path.display()
            )
        })?;
        let meta = meta::Meta::new(&content.metadata);
        let hyper = Hyper::from_meta(&meta)?;
        let tokenizer = GgufTokenizer::from_meta(&meta)?;
        let token_text = |id: Option<u32>| {
            id.and_then(|id| tokenizer.token(id))
                .unwrap_or_default()
                .to_owned()
        };
        let template = ChatTemplate::new(
            meta.opt_string("tokenizer.chat_template"),
            &token_text(tokenizer.bos),
            &token_text(tokenizer.eos),
        )?;
        let add_bos = meta
            .opt_bool("tokenizer.ggml.add_bos_token")
            .unwrap_or(false);
        let weights = weights::Weights::load(path, &content, hyper)?;
        let model = Transformer::new(weights, max_context)?;
        let load_time = started.elapsed();
        tracing::info!(path = %path.display(), ms = load_time.as_millis() as u64, "model loaded");
        Ok(Loaded {
            model,
            tokenizer,
            template,
            add_bos,
            load_time,
        })
    }
}

enum Slot {
    Loading,
    Ready(Arc<Mutex<Loaded>>),
    Failed(String),
}

struct Shared {
    slot: Mutex<Slot>,
    changed: Condvar,
    /// Reply workers still running.
    active: AtomicUsize,
}

/// The embedded model engine.
pub struct GgufEngine {
    shared: Arc<Shared>,
    path: PathBuf,
}

impl GgufEngine {
    /// Starts loading `path` on a background thread and returns at once.
    pub fn spawn_load(path: PathBuf, max_context: usize) -> Self {
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot::Loading),
            changed: Condvar::new(),
            active: AtomicUsize::new(0),
        });
        let loader = shared.clone();
        let file = path.clone();
        let spawned = std::thread::Builder::new()
            .name("gguf-load".into())
            .spawn(move || {
                let slot = match Loaded::load(&file, max_context) {
                    Ok(loaded) => Slot::Ready(Arc::new(Mutex::new(loaded))),
                    Err(err) => {
                        tracing::error!(error = %format!("{err:#}"), "model failed to load");
                        Slot::Failed(format!("{err:#}"))
                    }
                };
                set_slot(&loader, slot);
            });
        if let Err(err) = spawned {
            set_slot(
                &shared,
                Slot::Failed(format!("cannot start the loading thread: {err}")),
            );
        }
        GgufEngine { shared, path }
    }

    /// Builds the engine from `--model`, or the fetched default model. A missing or
    /// non-GGUF file is reported here, before the server starts.
    pub fn from_options(options: &super::EngineOptions) -> Result<Self, super::EngineError> {
        let path = match &options.model {
            Some(path) => path.clone(),
            None => {
                let paths = crate::config::Paths::discover().ok_or_else(|| {
                    super::EngineError::Setup(
                        "no home directory, so no default model; pass --model PATH".into(),
                    )
                })?;
                crate::model::default_model_path(&paths)
            }
        };
        crate::model::check_model_file(&path)
            .map_err(|err| super::EngineError::Setup(format!("{err:#}")))?;
        Ok(Self::spawn_load(path, MAX_CONTEXT))
    }

    /// Returns the model file this engine runs.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns whether the model is loading, ready, or failed to load.
    // NOTE: the `Engine` trait has no status method yet, so the server and the TUI
    // can only show this when they hold the `GgufEngine` itself.
    pub fn status(&self) -> ModelStatus {
        match &*lock(&self.shared.slot) {
            Slot::Loading => ModelStatus::Loading,
            Slot::Ready(_) => ModelStatus::Ready,
            Slot::Failed(err) => ModelStatus::Failed(err.clone()),
        }
    }

    /// Returns how many replies are being generated right now.
    pub fn active_replies(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Waits until loading ends, checking `cancel` every 50 ms. `Ok(None)` means
    /// cancelled.
    fn wait_loaded(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Option<Arc<Mutex<Loaded>>>, String> {
        let mut slot = lock(&self.shared.slot);
        loop {
            match &*slot {
                Slot::Ready(loaded) => return Ok(Some(loaded.clone())),
                Slot::Failed(err) => return Err(err.clone()),
                Slot::Loading if cancel.is_cancelled() => return Ok(None),
                Slot::Loading => {
                    slot = match self
                        .shared
                        .changed
                        .wait_timeout(slot, Duration::from_millis(50))
                    {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                }
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn set_slot(shared: &Shared, slot: Slot) {
    *lock(&shared.slot) = slot;
    shared.changed.notify_all();
}

impl Engine for GgufEngine {
    fn name(&self) -> &str {
        NAME
    }

    fn reply(&self, request: EngineRequest, cancel: CancellationToken) -> EngineStream {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let engine = GgufEngine {
            shared: self.shared.clone(),
            path: self.path.clone(),
        };
        let worker_tx = tx.clone();
        self.shared.active.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("gguf-reply".into())
            .spawn(move || {
                run_reply(&engine, request, &cancel, &worker_tx);
                engine.shared.active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(err) = spawned {
            self.shared.active.fetch_sub(1, Ordering::SeqCst);
            let _ = tx.send(EngineEvent::Error(format!(
                "cannot start a generation thread: {err}"
            )));
        }
        drop(tx);
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}

type Sender = tokio::sync::mpsc::UnboundedSender<EngineEvent>;

fn run_reply(engine: &GgufEngine, request: EngineRequest, cancel: &CancellationToken, tx: &Sender) {
    let loaded = match engine.wait_loaded(cancel) {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return,
        Err(err) => {
            let _ = tx.send(EngineEvent::Error(format!(
                "the embedded model is unavailable: {err}"
            )));
            return;
        }
    };
    let mut loaded = lock(&loaded);
    let sampling = Sampling::from_settings(&request.assistant.settings);
    let messages = chat_messages(&request.assistant.instructions, &request.messages);
    let capacity = loaded.model.capacity();
    let result = fit_prompt(&loaded, messages, capacity).and_then(|prompt| {
        let mut emit = |text: String| tx.send(EngineEvent::Delta(text)).is_ok();
        generate(&mut loaded, &prompt, sampling, cancel, &mut emit)
    });
    match result {
        Ok(timings) if timings.finish == Finish::Cancelled => {}
        Ok(_) => {
            let _ = tx.send(EngineEvent::Done);
        }
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "generation failed");
            let _ = tx.send(EngineEvent::Error(format!(
                "the embedded model failed: {err:#}"
            )));
        }
    }
}
