//! `assisters model fetch --url`: downloads from a loopback server, resumes a partial
//! file with a Range request, and keeps nothing when the hash does not match.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use assisters::model::{DownloadRequest, download, sha256_file};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;

#[derive(Clone)]
struct Served {
    bytes: Arc<Vec<u8>>,
    ranges: Arc<Mutex<Vec<Option<String>>>>,
}

fn payload() -> Vec<u8> {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend((0..200_000u32).map(|i| (i * 31 % 251) as u8));
    bytes
}

async fn serve_file(State(served): State<Served>, headers: HeaderMap) -> Response {
    let range = headers.get("range").map(|v| v.to_str().unwrap().to_owned());
    served.ranges.lock().unwrap().push(range.clone());
    let total = served.bytes.len();
    match range.and_then(|r| {
        r.strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .map(str::to_owned)
    }) {
        Some(start) => {
            let start: usize = start.parse().unwrap();
            Response::builder()
                .status(StatusCode::PARTIAL_CONTENT)
                .header(
                    "content-range",
                    format!("bytes {start}-{}/{total}", total - 1),
                )
                .header("content-length", total - start)
                .body(Body::from(served.bytes[start..].to_vec()))
                .unwrap()
        }
        None => Response::builder()
            .header("content-length", total)
            .body(Body::from(served.bytes.to_vec()))
            .unwrap(),
    }
}

async fn server() -> (String, Served) {
    let served = Served {
        bytes: Arc::new(payload()),
        ranges: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/files/tiny.gguf", get(serve_file))
        .with_state(served.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), served)
}

fn expected_sha(dir: &std::path::Path) -> String {
    let path = dir.join("expected.bin");
    std::fs::write(&path, payload()).unwrap();
    sha256_file(&path).unwrap()
}

#[tokio::test]
async fn downloads_and_checks_the_hash() {
    let (base, served) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let request = DownloadRequest {
        url: format!("{base}/files/tiny.gguf"),
        sha256: Some(expected_sha(dir.path()).to_uppercase()),
        dir: dir.path().join("models"),
    };
    let path = download(&request).await.unwrap();
    assert_eq!(path, dir.path().join("models/tiny.gguf"));
    assert_eq!(std::fs::read(&path).unwrap(), payload());
    assert!(!dir.path().join("models/tiny.gguf.part").exists());
    assert_eq!(served.ranges.lock().unwrap().as_slice(), &[None]);
}

#[tokio::test]
async fn resumes_a_partial_download() {
    let (base, served) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::write(models.join("tiny.gguf.part"), &payload()[..70_000]).unwrap();
    let request = DownloadRequest {
        url: format!("{base}/files/tiny.gguf"),
        sha256: Some(expected_sha(dir.path())),
        dir: models.clone(),
    };
    let path = download(&request).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), payload());
    assert_eq!(
        served.ranges.lock().unwrap().as_slice(),
        &[Some("bytes=70000-".to_owned())]
    );
}

#[tokio::test]
async fn wrong_hash_keeps_nothing() {
    let (base, _) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    let request = DownloadRequest {
        url: format!("{base}/files/tiny.gguf"),
        sha256: Some(wrong.clone()),
        dir: dir.path().to_path_buf(),
    };
    let err = download(&request).await.unwrap_err().to_string();
    assert!(err.contains(&wrong) && err.contains("not kept"), "{err}");
    assert!(!dir.path().join("tiny.gguf").exists());
    assert!(!dir.path().join("tiny.gguf.part").exists());
}

#[tokio::test]
async fn missing_file_is_reported_with_the_status() {
    let (base, _) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let request = DownloadRequest {
        url: format!("{base}/files/absent.gguf"),
        sha256: None,
        dir: dir.path().to_path_buf(),
    };
    let err = download(&request).await.unwrap_err().to_string();
    assert!(err.contains("404"), "{err}");
}
