//! Speed of the embedded model: load time, time to first token, prefill and decode
//! tokens per second on a fixed prompt of about 300 tokens, with llama.cpp's figures
//! on the same file when `llama-cpp-python` is installed.
//!
//! `cargo bench --bench engine`; the model is the fetched default one, or the file in
//! `ASSISTERS_BENCH_MODEL`.

// The report goes to stdout.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use assisters::engine::gguf::{ChatMessage, Loaded, MAX_CONTEXT};

/// Tokens decoded after the prompt.
const DECODE_TOKENS: usize = 128;

const PROMPT: &str = "A lighthouse keeper on a remote island keeps a logbook of everything \
that happens during the long winter. In the first week, a storm knocks out the radio, and \
she has to climb the tower twice a night to wind the clockwork that turns the lens. In the \
second week, a fishing boat shelters in the bay for three days; its crew of four trade \
coffee, flour and news for fresh water and a dry place to sleep. In the third week, the \
supply ship is late, so she rations the lamp oil and counts the tins in the pantry: \
twenty-two tins of beans, fourteen of peaches, nine of sardines and a single tin with no \
label. In the fourth week, the radio crackles back to life and she learns that the supply \
ship ran aground on a sandbar forty miles to the south, with no one hurt. She writes it all \
down in careful handwriting, adds a sketch of the fishing boat, and notes the temperature \
each morning at six: minus four, minus seven, minus two, plus one. Read the logbook summary \
above, then answer in three short sentences: what went wrong during the winter, how did the \
keeper cope with each problem, and what do you think was inside the tin with no label?";

fn main() {
    let Some(path) = model_path() else {
        println!(
            "skipped: no model file; run `assisters model fetch` or set ASSISTERS_BENCH_MODEL"
        );
        return;
    };
    println!("machine: {}", machine());
    println!("model: {}", path.display());
    let ours = match run_embedded(&path) {
        Ok(figures) => figures,
        Err(err) => {
            println!("embedded engine failed: {err:#}");
            return;
        }
    };
    print_figures("assisters", &ours);
    match run_llama_cpp(&path, &ours.prompt_text) {
        Ok(Some(figures)) => print_figures("llama.cpp (llama-cpp-python)", &figures),
        Ok(None) => println!("llama.cpp: skipped, llama-cpp-python is not importable by python3"),
        Err(err) => println!("llama.cpp: failed: {err}"),
    }
}

struct Figures {
    load_secs: f64,
    prompt_tokens: usize,
    first_token_secs: f64,
    prefill_tps: f64,
    decode_tps: f64,
    prompt_text: String,
}

fn print_figures(who: &str, f: &Figures) {
    println!(
        "{who}: load {:.3} s, prompt {} tokens, first token {:.3} s, prefill {:.1} tok/s, decode {:.1} tok/s",
        f.load_secs, f.prompt_tokens, f.first_token_secs, f.prefill_tps, f.decode_tps
    );
}

fn model_path() -> Option<PathBuf> {
    let path = match std::env::var_os("ASSISTERS_BENCH_MODEL") {
        Some(path) => PathBuf::from(path),
        None => assisters::model::default_model_path(&assisters::config::Paths::discover()?),
    };
    path.is_file().then_some(path)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores available, {}", std::env::consts::ARCH)
}

fn run_embedded(path: &std::path::Path) -> anyhow::Result<Figures> {
    // The first load warms the page cache; the second one is measured.
    drop(Loaded::load(path, MAX_CONTEXT)?);
    let started = Instant::now();
    let mut loaded = Loaded::load(path, MAX_CONTEXT)?;
    let load_secs = started.elapsed().as_secs_f64();
    let messages = [
        ChatMessage {
            role: "system".into(),
            content: "You are a helpful assistant.".into(),
        },
        ChatMessage {
            role: "user".into(),
            content: PROMPT.into(),
        },
    ];
    let prompt_text = loaded.template.render(&messages)?;
    // Warm up the kernels and thread pool on a few tokens.
    let warm = loaded.tokenizer.encode("Hello there")?;
    loaded.model.forward(&warm)?;
    loaded.model.truncate(0);
    let started = Instant::now();
    let prompt = loaded.tokenizer.encode(&prompt_text)?;
    let mut logits = Vec::new();
    for chunk in prompt.chunks(128) {
        logits = loaded.model.forward(chunk)?;
    }
    let mut next = assisters::engine::gguf::argmax(&logits);
    let first_token_secs = started.elapsed().as_secs_f64();
    let decode_started = Instant::now();
    for _ in 0..DECODE_TOKENS {
        logits = loaded.model.forward(&[next])?;
        next = assisters::engine::gguf::argmax(&logits);
    }
    let decode_secs = decode_started.elapsed().as_secs_f64();
    Ok(Figures {
        load_secs,
        prompt_tokens: prompt.len(),
        first_token_secs,
        prefill_tps: prompt.len() as f64 / first_token_secs,
        decode_tps: DECODE_TOKENS as f64 / decode_secs,
        prompt_text,
    })
}

/// The same measurement with llama.cpp, through a short Python script.
fn run_llama_cpp(path: &std::path::Path, prompt: &str) -> Result<Option<Figures>, String> {
    let script = r#"
import sys, time, json
try:
    import llama_cpp
except Exception:
    print("MISSING"); sys.exit(0)
import numpy as np
path, prompt, n = sys.argv[1], sys.stdin.read(), int(sys.argv[2])
threads = len(__import__("os").sched_getaffinity(0))
llama_cpp.Llama(model_path=path, n_ctx=4096, n_threads=threads, verbose=False)
t = time.perf_counter()
llm = llama_cpp.Llama(model_path=path, n_ctx=4096, n_threads=threads, n_batch=512, verbose=False)
load = time.perf_counter() - t
llm.eval(llm.tokenize(b"Hello there", add_bos=False, special=True)); llm.reset()
t = time.perf_counter()
tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
llm.eval(tokens)
nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
first = time.perf_counter() - t
t = time.perf_counter()
for _ in range(n):
    llm.eval([nxt]); nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
decode = time.perf_counter() - t
print(json.dumps({"load": load, "tokens": len(tokens), "first": first, "decode": n / decode}))
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .arg(DECODE_TOKENS.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run python3: {err}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin
            .write_all(prompt.as_bytes())
            .map_err(|err| err.to_string())?;
    }
    let output = child.wait_with_output().map_err(|err| err.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if stdout.trim() == "MISSING" {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).map_err(|_| {
        format!(
            "unexpected output: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let number = |key: &str| value[key].as_f64().unwrap_or(f64::NAN);
    let tokens = number("tokens") as usize;
    Ok(Some(Figures {
        load_secs: number("load"),
        prompt_tokens: tokens,
        first_token_secs: number("first"),
        prefill_tps: tokens as f64 / number("first"),
        decode_tps: number("decode"),
        prompt_text: String::new(),
    }))
}
