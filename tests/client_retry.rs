//! Retries, timeouts and error responses of the client, against a raw TCP mock that
//! controls statuses, headers and timing exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use assisters::api::client::{RetryNotice, RetryReason};
use assisters::api::types::{AssistantCreate, ThreadCreate};
use assisters::api::{ApiError, Client, ClientConfig};
use client_support::{Step, error_body, json_response};

const KEY: &str = "sk-retry-test-secret";
const EMPTY_PAGE: &str = r#"{"data":[],"total":0,"has_more":false}"#;
const ASSISTANT: &str = r#"{"id":"asst_1","name":"Helper","created_at":"2025-01-01T00:00:00Z"}"#;

/// Builds a client with fast backoff and a log of retry notices.
fn observed_client(base_url: &str, max_retries: u32) -> (Client, Arc<Mutex<Vec<RetryNotice>>>) {
    let mut config = ClientConfig::new(base_url, Some(KEY.to_owned()));
    config.max_retries = max_retries;
    config.max_backoff = Duration::from_millis(40);
    config.read_timeout = Duration::from_secs(5);
    config.connect_timeout = Duration::from_secs(2);
    let notices: Arc<Mutex<Vec<RetryNotice>>> = Arc::default();
    let recorded = Arc::clone(&notices);
    let client = Client::new(config)
        .expect("client")
        .with_retry_observer(Arc::new(move |notice| {
            recorded.lock().unwrap().push(notice.clone());
        }));
    (client, notices)
}

fn limited(retry_after: &str) -> Step {
    json_response(
        "429 Too Many Requests",
        &format!(
            "retry-after: {retry_after}\r\nx-ratelimit-limit: 2\r\nx-ratelimit-remaining: 0\r\nx-ratelimit-reset: 1\r\n"
        ),
        &error_body(
            "rate_limit_exceeded",
            "too many requests",
            "rate_limit_error",
        ),
    )
}

fn server_error(status: &str) -> Step {
    json_response(
        status,
        "",
        &error_body("server_error", "try again", "api_error"),
    )
}

fn ok(body: &str) -> Step {
    json_response("200 OK", "", body)
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let mock = client_support::start(vec![vec![limited("1")], vec![ok(EMPTY_PAGE)]]).await;
    let (client, notices) = observed_client(&mock.base_url, 3);
    let started = Instant::now();

    let page = client
        .list_assistants(20, 0)
        .await
        .expect("succeeds after the window");

    assert!(page.data.is_empty());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let notices = notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].reason, RetryReason::RateLimited);
    assert!(
        notices[0].delay >= Duration::from_secs(1),
        "{:?}",
        notices[0].delay
    );
    assert_eq!(mock.seen().len(), 2);
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    let mock = client_support::start(vec![vec![limited(&date)], vec![ok(EMPTY_PAGE)]]).await;
    let (client, notices) = observed_client(&mock.base_url, 3);

    client
        .list_assistants(20, 0)
        .await
        .expect("succeeds after the date");

    let notices = notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 1);
    // The date has whole-second precision, so the wait is between 1 and 2.25 seconds.
    assert!(
        notices[0].delay >= Duration::from_millis(900),
        "{:?}",
        notices[0].delay
    );
    assert!(
        notices[0].delay <= Duration::from_millis(2300),
        "{:?}",
        notices[0].delay
    );
}

#[tokio::test]
async fn post_is_retried_after_429() {
    let mock = client_support::start(vec![vec![limited("0")], vec![ok(ASSISTANT)]]).await;
    let (client, notices) = observed_client(&mock.base_url, 3);
    let body = AssistantCreate {
        name: "Helper".into(),
        ..AssistantCreate::default()
    };

    let created = client
        .create_assistant(&body)
        .await
        .expect("created on retry");

    assert_eq!(created.id, "asst_1");
    assert_eq!(notices.lock().unwrap().len(), 1);
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body, seen[0].body, "the retry sends the same body");
    assert!(seen[1].body.contains("Helper"));
}

#[tokio::test]
async fn get_retries_server_errors() {
    let scripts = vec![
        vec![server_error("503 Service Unavailable")],
        vec![server_error("502 Bad Gateway")],
        vec![ok(EMPTY_PAGE)],
    ];
    let mock = client_support::start(scripts).await;
    let (client, notices) = observed_client(&mock.base_url, 3);

    client
        .list_assistants(20, 0)
        .await
        .expect("succeeds on the third try");

    let reasons: Vec<RetryReason> = notices
        .lock()
        .unwrap()
        .iter()
        .map(|n| n.reason.clone())
        .collect();
    assert_eq!(
        reasons,
        [RetryReason::ServerError(503), RetryReason::ServerError(502)]
    );
    let attempts: Vec<u32> = notices.lock().unwrap().iter().map(|n| n.attempt).collect();
    assert_eq!(attempts, [1, 2]);
    assert_eq!(mock.seen().len(), 3);
}

#[tokio::test]
async fn post_does_not_retry_server_errors() {
    let scripts = vec![
        vec![server_error("503 Service Unavailable")],
        vec![ok(r#"{"id":"thread_1"}"#)],
    ];
    let mock = client_support::start(scripts).await;
    let (client, notices) = observed_client(&mock.base_url, 3);

    let err = client
        .create_thread(&ThreadCreate::default())
        .await
        .expect_err("no retry");

    assert_eq!(err.status(), Some(503));
    assert_eq!(err.code(), "server_error");
    assert!(notices.lock().unwrap().is_empty());
    assert_eq!(mock.seen().len(), 1);
}

#[tokio::test]
async fn retries_stop_at_the_maximum() {
    let mock = client_support::start(vec![vec![server_error("500 Internal Server Error")]]).await;
    let (client, notices) = observed_client(&mock.base_url, 2);

    let err = client
        .get_assistant("asst_1")
        .await
        .expect_err("still failing");

    assert_eq!(err.status(), Some(500));
    assert_eq!(notices.lock().unwrap().len(), 2);
    assert_eq!(mock.seen().len(), 3);
}

#[tokio::test]
async fn html_error_page_is_described() {
    let page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    let html = Step::Write(
        format!(
            "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
            page.len()
        )
        .into_bytes(),
    );
    let mock = client_support::start(vec![vec![html]]).await;
    let (client, _) = observed_client(&mock.base_url, 0);

    let err = client.list_assistants(20, 0).await.expect_err("a 502");

    assert_eq!(err.status(), Some(502));
    assert_eq!(err.code(), "server_error");
    assert!(err.message().contains("502 Bad Gateway"), "{err}");
    assert!(err.message().contains("not an API error"), "{err}");
}

#[tokio::test]
async fn connection_refused_names_host() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let (client, notices) = observed_client(&format!("http://127.0.0.1:{port}/v1"), 2);

    let err = client
        .list_assistants(20, 0)
        .await
        .expect_err("nothing listens");

    let ApiError::Transport(message) = &err else {
        panic!("expected a transport error, got {err:?}");
    };
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("could not connect"), "{message}");
    assert!(!message.contains(KEY));
    let notices = notices.lock().unwrap().clone();
    assert_eq!(
        notices.len(),
        2,
        "a GET is retried after a connection error"
    );
    assert!(matches!(notices[0].reason, RetryReason::Transport(_)));

    let (post_client, post_notices) = observed_client(&format!("http://127.0.0.1:{port}/v1"), 2);
    let post = post_client.create_thread(&ThreadCreate::default()).await;
    assert!(matches!(post, Err(ApiError::Transport(_))));
    assert!(
        post_notices.lock().unwrap().is_empty(),
        "a POST is not retried"
    );
}

#[tokio::test]
async fn silent_server_hits_read_timeout() {
    let mock = client_support::start(vec![vec![Step::Sleep(Duration::from_secs(3))]]).await;
    let mut config = ClientConfig::new(&mock.base_url, Some(KEY.to_owned()));
    config.read_timeout = Duration::from_millis(300);
    config.max_retries = 0;
    let client = Client::new(config).expect("client");
    let started = Instant::now();

    let err = client.list_assistants(20, 0).await.expect_err("times out");

    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let ApiError::Transport(message) = &err else {
        panic!("expected a transport error, got {err:?}");
    };
    assert!(message.contains("timed out"), "{message}");
}

#[tokio::test]
async fn read_timeout_is_not_retried() {
    let mock = client_support::start(vec![vec![Step::Sleep(Duration::from_secs(3))]]).await;
    let mut config = ClientConfig::new(&mock.base_url, Some(KEY.to_owned()));
    config.read_timeout = Duration::from_millis(300);
    config.max_retries = 3;
    let notices: Arc<Mutex<Vec<RetryNotice>>> = Arc::default();
    let recorded = Arc::clone(&notices);
    let client = Client::new(config)
        .expect("client")
        .with_retry_observer(Arc::new(move |notice| {
            recorded.lock().unwrap().push(notice.clone());
        }));
    let started = Instant::now();

    let err = client.list_assistants(20, 0).await.expect_err("times out");

    assert!(matches!(err, ApiError::Transport(_)), "{err:?}");
    assert!(
        notices.lock().unwrap().is_empty(),
        "a server that accepted the request but went silent is not asked again"
    );
    assert_eq!(mock.seen().len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn long_retry_after_is_returned() {
    let mock = client_support::start(vec![vec![limited("3600")], vec![ok(EMPTY_PAGE)]]).await;
    let (client, notices) = observed_client(&mock.base_url, 3);

    let err = client
        .list_assistants(20, 0)
        .await
        .expect_err("not waited for");

    let ApiError::Api { retry_after, .. } = &err else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(*retry_after, Some(Duration::from_secs(3600)));
    assert!(notices.lock().unwrap().is_empty());
    let state = client.rate_limit().expect("rate-limit headers of the 429");
    assert_eq!((state.limit, state.remaining, state.reset_secs), (2, 0, 1));
}

#[tokio::test]
async fn requests_carry_key_and_json() {
    let mock = client_support::start(vec![vec![ok(ASSISTANT)]]).await;
    let (client, _) = observed_client(&mock.base_url, 0);
    let body = AssistantCreate {
        name: "Helper".into(),
        ..AssistantCreate::default()
    };

    client.create_assistant(&body).await.expect("created");

    let seen = mock.seen();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].target, "/v1/assisters");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    let sent: serde_json::Value = serde_json::from_str(&seen[0].body).expect("JSON body");
    assert_eq!(sent, serde_json::json!({"name": "Helper"}));
}
