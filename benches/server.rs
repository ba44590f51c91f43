//! Server benchmark: drives an in-process server on loopback and prints
//! requests per second for `GET /v1/assisters`, the time to the first stream event,
//! and how many streams stay open at once without errors, with the process RSS.
//!
//! Run with `cargo bench --bench server`. Set `SERVER_BENCH_STREAMS` to change the
//! number of concurrent streams (default 1000). Client and server share this
//! process, so the RSS figure covers both.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use assisters::engine::Script;
use assisters::engine::scripted::Scripted;
use assisters::server::{EngineChoice, RunningServer, ServerConfig, spawn};
use futures::StreamExt;
use serde_json::{Value, json};

const KEY: &str = "bench-key";
const RPS_SECONDS: u64 = 5;
const RPS_WORKERS: usize = 32;
const FIRST_EVENT_SAMPLES: usize = 100;
/// How long each held stream stays open: one pause between its two words.
const HOLD: Duration = Duration::from_secs(3);

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let streams: usize = std::env::var("SERVER_BENCH_STREAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    check_fd_limit(streams)?;
    let dir = tempfile::tempdir()?;
    let script = Script::parse(
        r#"{"rules": [{"reply": "held open"}]}"#,
        "bench script",
        true,
    )?;
    let mut config = ServerConfig::new(dir.path().join("bench.db"), KEY);
    config.rate_limit = u32::MAX;
    config.engine = EngineChoice::Instance(Arc::new(Scripted::new(script, HOLD)));
    let server = spawn(config).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(streams + RPS_WORKERS)
        .timeout(Duration::from_secs(60))
        .build()?;
    let base = server.base_url();

    let rps = list_throughput(&http, &base).await?;
    println!("GET /v1/assisters: {rps:.0} requests/s ({RPS_WORKERS} connections, {RPS_SECONDS} s)");
    let (median, p95) = first_event_latency(&http, &base).await?;
    println!(
        "time to first stream event: median {:.2} ms, p95 {:.2} ms ({FIRST_EVENT_SAMPLES} streams)",
        median.as_secs_f64() * 1000.0,
        p95.as_secs_f64() * 1000.0
    );
    let before = rss_kib();
    let (held, failed, rss) = concurrent_streams(&http, &base, streams).await?;
    println!(
        "concurrent streams: {held} of {streams} open at once, {failed} failed; \
         RSS {} MiB while open ({} MiB before)",
        rss / 1024,
        before / 1024
    );
    shutdown(server).await
}

async fn shutdown(server: RunningServer) -> anyhow::Result<()> {
    server.shutdown().await
}

fn check_fd_limit(streams: usize) -> anyhow::Result<()> {
    // Each stream needs two descriptors here: the client's and the server's socket.
    let needed = streams * 2 + 256;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|value| value.parse::<usize>().ok());
    if let Some(soft) = soft
        && soft < needed
    {
        anyhow::bail!(
            "the open-file limit is {soft}, but {streams} streams need about {needed}; \
             run `ulimit -n {needed}` first or lower SERVER_BENCH_STREAMS"
        );
    }
    Ok(())
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> anyhow::Result<Value> {
    let response = http.post(url).bearer_auth(KEY).json(&body).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "POST failed: {}",
        response.status()
    );
    Ok(response.json().await?)
}

async fn list_throughput(http: &reqwest::Client, base: &str) -> anyhow::Result<f64> {
    for index in 0..20 {
        post(
            http,
            format!("{base}/assisters"),
            json!({"name": format!("bench {index}")}),
        )
        .await?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(RPS_SECONDS);
    let workers = (0..RPS_WORKERS).map(|_| {
        let (http, url) = (http.clone(), format!("{base}/assisters"));
        let (done, errors) = (Arc::clone(&done), Arc::clone(&errors));
        tokio::spawn(async move {
            while Instant::now() < deadline {
                let ok = match http.get(&url).bearer_auth(KEY).send().await {
                    Ok(response) => {
                        response.status().is_success() && response.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                let counter = if ok { &done } else { &errors };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    futures::future::join_all(workers).await;
    anyhow::ensure!(errors.load(Ordering::Relaxed) == 0, "list requests failed");
    Ok(done.load(Ordering::Relaxed) as f64 / RPS_SECONDS as f64)
}

/// Creates a thread with one user message and returns its stream URL.
async fn prepared_stream(
    http: &reqwest::Client,
    base: &str,
    assistant: &str,
) -> anyhow::Result<String> {
    let thread = post(http, format!("{base}/threads"), json!({})).await?;
    let thread = thread["id"].as_str().unwrap_or_default().to_owned();
    post(
        http,
        format!("{base}/threads/{thread}/messages"),
        json!({"content": "hi"}),
    )
    .await?;
    Ok(format!(
        "{base}/threads/{thread}/messages/stream?assistant_id={assistant}"
    ))
}

async fn first_event_latency(
    http: &reqwest::Client,
    base: &str,
) -> anyhow::Result<(Duration, Duration)> {
    let assistant = post(
        http,
        format!("{base}/assisters"),
        json!({"name": "latency"}),
    )
    .await?;
    let assistant = assistant["id"].as_str().unwrap_or_default().to_owned();
    let mut samples = Vec::with_capacity(FIRST_EVENT_SAMPLES);
    for _ in 0..FIRST_EVENT_SAMPLES {
        let url = prepared_stream(http, base, &assistant).await?;
        let started = Instant::now();
        let response = http.get(&url).bearer_auth(KEY).send().await?;
        let mut body = response.bytes_stream();
        let first = body.next().await;
        samples.push(started.elapsed());
        anyhow::ensure!(matches!(first, Some(Ok(_))), "stream sent no event");
        // Drop the stream: the run is cancelled and saved as incomplete.
    }
    samples.sort();
    Ok((
        samples[samples.len() / 2],
        samples[samples.len() * 95 / 100],
    ))
}

/// Opens `count` streams at once; returns how many had their first event while all
/// were open, how many failed, and the RSS in KiB at that point.
async fn concurrent_streams(
    http: &reqwest::Client,
    base: &str,
    count: usize,
) -> anyhow::Result<(usize, usize, u64)> {
    let assistant = post(http, format!("{base}/assisters"), json!({"name": "holder"})).await?;
    let assistant = assistant["id"].as_str().unwrap_or_default().to_owned();
    let mut urls = Vec::with_capacity(count);
    for _ in 0..count {
        urls.push(prepared_stream(http, base, &assistant).await?);
    }
    let opened = Arc::new(tokio::sync::Barrier::new(count + 1));
    let started = Instant::now();
    let tasks: Vec<_> = urls
        .into_iter()
        .map(|url| {
            let (http, opened) = (http.clone(), Arc::clone(&opened));
            tokio::spawn(async move { hold_stream(http, url, opened).await })
        })
        .collect();
    // Every task reaches the barrier once, after its first event or its failure.
    opened.wait().await;
    let opening = started.elapsed();
    let rss = rss_kib();
    let results = futures::future::join_all(tasks).await;
    let outcomes: Vec<(bool, bool)> = results
        .into_iter()
        .map(|r| r.unwrap_or((false, false)))
        .collect();
    let failed = outcomes.iter().filter(|(_, completed)| !completed).count();
    // Each stream stays open for HOLD after its first event, so when all first events
    // arrived within HOLD, all streams were open at the same moment.
    let held = if opening < HOLD {
        outcomes.iter().filter(|(first, _)| *first).count()
    } else {
        0
    };
    println!(
        "opening {count} streams took {:.0} ms",
        opening.as_secs_f64() * 1000.0
    );
    Ok((held, failed, rss))
}

/// Reads one stream: passes the barrier after the first event, then reads to the
/// end. Returns whether the first event came, and whether the stream ended with a
/// final event and `[DONE]`.
async fn hold_stream(
    http: reqwest::Client,
    url: String,
    opened: Arc<tokio::sync::Barrier>,
) -> (bool, bool) {
    let response = match http.get(&url).bearer_auth(KEY).send().await {
        Ok(response) if response.status().is_success() => response,
        _ => {
            opened.wait().await;
            return (false, false);
        }
    };
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut passed = false;
    while let Some(Ok(chunk)) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if !passed && text.contains("data: ") {
            passed = true;
            opened.wait().await;
        }
    }
    if !passed {
        opened.wait().await;
    }
    let completed = text.contains("\"delta\":false") && text.trim_end().ends_with("data: [DONE]");
    (passed, completed)
}

/// Returns this process's resident set size in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}
