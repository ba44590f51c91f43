//! The typed client against the real server on an ephemeral loopback port: every
//! endpoint, error statuses, auth, pagination, rate limits and concurrent streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_support;

use std::collections::BTreeMap;
use std::time::Duration;

use assisters::api::client::ThreadQuery;
use assisters::api::types::*;
use assisters::api::{ApiError, Client, ClientConfig};
use client_support::{RealServer, SERVER_KEY, real_server};
use futures::StreamExt;

fn client_for(base_url: &str, key: &str) -> Client {
    let mut config = ClientConfig::new(base_url, Some(key.to_owned()));
    config.max_backoff = Duration::from_millis(50);
    config.read_timeout = Duration::from_secs(10);
    Client::new(config).expect("client")
}

fn client(server: &RealServer) -> Client {
    client_for(&server.base_url, SERVER_KEY)
}

fn named(name: &str) -> AssistantCreate {
    AssistantCreate {
        name: name.to_owned(),
        ..AssistantCreate::default()
    }
}

fn lookup_tool() -> Tool {
    Tool::Function(FunctionTool {
        kind: FunctionKind::Function,
        name: "lookup_user".to_owned(),
        description: "Finds a user by id".to_owned(),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {"user_id": {"type": "string"}},
        }),
    })
}

/// Collects a stream, bounded by 20 seconds.
async fn collect(
    stream: assisters::api::client::EventStream,
) -> Vec<Result<StreamEvent, ApiError>> {
    tokio::time::timeout(Duration::from_secs(20), stream.collect())
        .await
        .expect("stream ends in time")
}

fn deltas(items: &[Result<StreamEvent, ApiError>]) -> String {
    items
        .iter()
        .filter_map(|item| match item {
            Ok(StreamEvent::Delta { content, .. }) => Some(content.as_str()),
            _ => None,
        })
        .collect()
}

fn final_message(items: &[Result<StreamEvent, ApiError>]) -> Option<Message> {
    items.iter().find_map(|item| match item {
        Ok(StreamEvent::Final(message)) => Some(message.clone()),
        _ => None,
    })
}

fn assert_api_error<T>(result: Result<T, ApiError>, status: u16, code: &str) -> ApiError {
    let Err(err) = result else {
        panic!("expected an API error {status} {code}, got a success");
    };
    assert_eq!(err.status(), Some(status), "{err:?}");
    assert_eq!(err.code(), code, "{err:?}");
    err
}

#[tokio::test]
async fn assistant_crud_round_trip() {
    let server = real_server(|_| {}).await;
    let client = client(&server);
    let body = AssistantCreate {
        name: "Support".into(),
        description: Some("Answers billing questions".into()),
        instructions: Some("Be brief.".into()),
        model: Some("scripted".into()),
        tools: Some(vec![Tool::Builtin("web_search".into()), lookup_tool()]),
        settings: Some(Settings {
            temperature: Some(0.5),
            top_p: Some(0.9),
        }),
        file_ids: None,
    };

    let created = client.create_assistant(&body).await.expect("create");
    assert!(created.id.starts_with(ASSISTANT_PREFIX), "{}", created.id);
    assert_eq!(created.name, "Support");
    assert_eq!(created.tools.len(), 2);
    assert_eq!(created.tools[1].name(), "lookup_user");
    assert_eq!(created.settings.temperature, Some(0.5));

    let fetched = client.get_assistant(&created.id).await.expect("get");
    assert_eq!(fetched, created);

    let update = AssistantUpdate {
        name: Some("Billing".into()),
        ..AssistantUpdate::default()
    };
    let updated = client
        .update_assistant(&created.id, &update)
        .await
        .expect("update");
    assert_eq!(updated.name, "Billing");
    assert_eq!(
        updated.instructions, "Be brief.",
        "unsent fields keep their value"
    );
    assert_eq!(updated.tools, created.tools);

    let deleted = client.delete_assistant(&created.id).await.expect("delete");
    assert_eq!(
        deleted,
        Deleted {
            id: created.id.clone(),
            deleted: true
        }
    );
    assert_api_error(client.get_assistant(&created.id).await, 404, "not_found");
    assert_api_error(client.delete_assistant(&created.id).await, 404, "not_found");
}

#[tokio::test]
async fn validation_errors_name_param() {
    let server = real_server(|_| {}).await;
    let client = client(&server);

    let err = assert_api_error(
        client.create_assistant(&named("")).await,
        400,
        "invalid_request_error",
    );
    assert_eq!(err.param(), Some("name"));

    let bad_settings = AssistantCreate {
        settings: Some(Settings {
            temperature: Some(7.0),
            top_p: None,
        }),
        ..named("Hot")
    };
    let err = assert_api_error(
        client.create_assistant(&bad_settings).await,
        400,
        "invalid_request_error",
    );
    assert!(
        err.param()
            .is_some_and(|param| param.contains("temperature")),
        "{err:?}"
    );

    let err = assert_api_error(
        client.list_assistants(0, 0).await,
        400,
        "invalid_request_error",
    );
    assert_eq!(err.param(), Some("limit"));
    let err = assert_api_error(
        client.list_assistants(101, 0).await,
        400,
        "invalid_request_error",
    );
    assert_eq!(err.param(), Some("limit"));
}

#[tokio::test]
async fn wrong_key_is_401_without_rate_headers() {
    let server = real_server(|_| {}).await;
    let key = "wrong-key-never-shown";
    let client = client_for(&server.base_url, key);

    let err = assert_api_error(client.list_assistants(20, 0).await, 401, "invalid_api_key");

    assert_eq!(
        client.rate_limit(),
        None,
        "a 401 carries no rate-limit headers"
    );
    assert!(!err.to_string().contains(key));
    assert!(!format!("{err:?}").contains(key));
    assert!(!format!("{client:?}").contains(key));
}

#[tokio::test]
async fn pagination_edges() {
    let server = real_server(|_| {}).await;
    let client = client(&server);
    for index in 0..5 {
        client
            .create_assistant(&named(&format!("a{index}")))
            .await
            .expect("create");
        // Distinct creation times keep "newest first" well defined.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let first = client.list_assistants(2, 0).await.expect("page 1");
    assert_eq!(first.total, 5);
    assert!(first.has_more);
    let names: Vec<&str> = first.data.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["a4", "a3"], "newest first");

    let last = client.list_assistants(2, 4).await.expect("last page");
    assert_eq!(last.data.len(), 1);
    assert_eq!(last.data[0].name, "a0");
    assert!(!last.has_more);

    let exact = client.list_assistants(5, 0).await.expect("exact page");
    assert_eq!(exact.data.len(), 5);
    assert!(!exact.has_more);

    let past_end = client.list_assistants(2, 50).await.expect("past the end");
    assert!(past_end.data.is_empty());
    assert_eq!(past_end.total, 5);
    assert!(!past_end.has_more);

    let max = client.list_assistants(100, 0).await.expect("limit 100");
    assert_eq!(max.data.len(), 5);
}

#[tokio::test]
async fn threads_and_messages() {
    let server = real_server(|_| {}).await;
    let client = client(&server);
    let assistant = client
        .create_assistant(&named("Helper"))
        .await
        .expect("assistant");
    let mut metadata = BTreeMap::new();
    metadata.insert(THREAD_ASSISTANT_KEY.to_owned(), assistant.id.clone());
    let tagged = client
        .create_thread(&ThreadCreate { metadata })
        .await
        .expect("thread");
    let untagged = client
        .create_thread(&ThreadCreate::default())
        .await
        .expect("thread");
    assert!(tagged.id.starts_with(THREAD_PREFIX));

    let all = client
        .list_threads(&ThreadQuery::default())
        .await
        .expect("list");
    assert_eq!(all.total, 2);
    let filtered = client
        .list_threads(&ThreadQuery {
            assistant_id: Some(assistant.id.clone()),
            ..ThreadQuery::default()
        })
        .await
        .expect("filtered");
    let ids: Vec<&str> = filtered.data.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, [tagged.id.as_str()]);
    assert_eq!(client.get_thread(&tagged.id).await.expect("get"), tagged);

    let user = client
        .create_message(&tagged.id, &MessageCreate::user("first"))
        .await
        .expect("user message");
    assert_eq!(user.role, Role::User);
    assert!(user.id.starts_with(MESSAGE_PREFIX));
    let blocking = MessageCreate {
        assistant_id: Some(assistant.id.clone()),
        ..MessageCreate::user("hello")
    };
    let reply = client
        .create_message(&tagged.id, &blocking)
        .await
        .expect("blocking reply");
    assert_eq!(reply.role, Role::Assistant);
    assert!(reply.content.contains("Helper"), "{}", reply.content);

    let history = client
        .list_messages(&tagged.id, 100, 0)
        .await
        .expect("history");
    let contents: Vec<&str> = history.data.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents.len(), 3, "{contents:?}");
    assert_eq!(contents[0], "first", "oldest first");
    assert_eq!(contents[1], "hello");

    let deleted = client.delete_thread(&untagged.id).await.expect("delete");
    assert!(deleted.deleted);
    assert_api_error(client.get_thread(&untagged.id).await, 404, "not_found");
    assert_api_error(
        client.list_messages(&untagged.id, 10, 0).await,
        404,
        "not_found",
    );
    let missing = client
        .create_message("thread_missing", &MessageCreate::user("x"))
        .await;
    assert_api_error(missing, 404, "not_found");
}

#[tokio::test]
async fn stream_round_trip_conflict_and_regenerate() {
    let server = real_server(|config| config.token_delay = Duration::from_millis(1)).await;
    let client = client(&server);
    let assistant = client
        .create_assistant(&named("Helper"))
        .await
        .expect("assistant");
    let thread = client
        .create_thread(&ThreadCreate::default())
        .await
        .expect("thread");
    client
        .create_message(&thread.id, &MessageCreate::user("hello there"))
        .await
        .expect("message");

    let items = collect(
        client
            .stream(&thread.id, &assistant.id, false)
            .await
            .expect("open"),
    )
    .await;

    let reply = final_message(&items).expect("a final event");
    assert!(!deltas(&items).is_empty());
    assert_eq!(
        deltas(&items),
        reply.content,
        "deltas add up to the final reply"
    );
    assert!(
        matches!(items.last(), Some(Ok(StreamEvent::Done))),
        "{items:?}"
    );
    let history = client
        .list_messages(&thread.id, 10, 0)
        .await
        .expect("history");
    assert_eq!(
        history.data.last().map(|m| m.content.clone()),
        Some(reply.content.clone())
    );

    let again = client.stream(&thread.id, &assistant.id, false).await;
    assert_api_error(again, 409, "reply_exists");

    let items = collect(
        client
            .stream(&thread.id, &assistant.id, true)
            .await
            .expect("regenerate"),
    )
    .await;
    assert!(final_message(&items).is_some(), "{items:?}");
    let history = client
        .list_messages(&thread.id, 10, 0)
        .await
        .expect("history");
    assert_eq!(history.total, 2, "the reply was replaced, not added");

    let missing = client.stream("thread_missing", &assistant.id, false).await;
    assert_api_error(missing, 404, "not_found");
    let unknown_assistant = client.stream(&thread.id, "asst_missing", true).await;
    assert_api_error(unknown_assistant, 404, "not_found");
}

#[tokio::test]
async fn custom_tool_requires_action_then_continues() {
    let server = real_server(|_| {}).await;
    let client = client(&server);
    let body = AssistantCreate {
        tools: Some(vec![lookup_tool()]),
        ..named("Directory")
    };
    let assistant = client.create_assistant(&body).await.expect("assistant");
    let thread = client
        .create_thread(&ThreadCreate::default())
        .await
        .expect("thread");
    client
        .create_message(
            &thread.id,
            &MessageCreate::user("please lookup_user user_id=42"),
        )
        .await
        .expect("message");

    let items = collect(
        client
            .stream(&thread.id, &assistant.id, false)
            .await
            .expect("open"),
    )
    .await;
    let pending = items.iter().find_map(|item| match item {
        Ok(StreamEvent::RequiresAction { tool_calls, .. }) => Some(tool_calls.clone()),
        _ => None,
    });
    let pending = pending.expect("a requires_action event");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].name, "lookup_user");
    assert_eq!(pending[0].arguments, serde_json::json!({"user_id": "42"}));
    assert!(matches!(items.last(), Some(Ok(StreamEvent::Done))));

    let output = ToolOutput {
        tool_call_id: pending[0].id.clone(),
        output: "Ada Lovelace".into(),
    };
    client
        .submit_tool_output(&thread.id, &output)
        .await
        .expect("tool output");
    let items = collect(
        client
            .stream(&thread.id, &assistant.id, false)
            .await
            .expect("reopen"),
    )
    .await;
    let reply = final_message(&items).expect("final reply");
    assert!(reply.content.contains("Ada Lovelace"), "{}", reply.content);

    let unknown = ToolOutput {
        tool_call_id: "call_missing".into(),
        output: "x".into(),
    };
    let err = client
        .submit_tool_output(&thread.id, &unknown)
        .await
        .expect_err("unknown call");
    assert!(matches!(err.status(), Some(404 | 409)), "{err:?}");
}

#[tokio::test]
async fn rate_limit_headers_are_exposed() {
    let server = real_server(|config| config.rate_limit = 50).await;
    let client = client(&server);
    assert_eq!(client.rate_limit(), None);

    client.list_assistants(20, 0).await.expect("first");
    let first = client.rate_limit().expect("rate-limit state");
    client.list_assistants(20, 0).await.expect("second");
    let second = client.rate_limit().expect("rate-limit state");

    assert_eq!(first.limit, 50);
    assert_eq!(first.remaining, 49);
    assert_eq!(second.remaining, 48);
    assert!(second.reset_secs <= 60, "{second:?}");
    assert!(second.observed_at >= first.observed_at);
}

#[tokio::test]
async fn real_429_carries_retry_after() {
    let server = real_server(|config| config.rate_limit = 3).await;
    let mut config = ClientConfig::new(&server.base_url, Some(SERVER_KEY.to_owned()));
    config.max_retries = 0;
    let client = Client::new(config).expect("client");
    for _ in 0..3 {
        client
            .list_assistants(1, 0)
            .await
            .expect("within the limit");
    }

    let err = assert_api_error(
        client.list_assistants(1, 0).await,
        429,
        "rate_limit_exceeded",
    );

    let ApiError::Api {
        retry_after, kind, ..
    } = &err
    else {
        panic!("expected an API error");
    };
    assert_eq!(kind, "rate_limit_error");
    let wait = retry_after.expect("Retry-After on a 429");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    let state = client.rate_limit().expect("429 carries rate-limit headers");
    assert_eq!(state.remaining, 0);
    assert_eq!(state.limit, 3);
}

#[tokio::test]
async fn twenty_concurrent_streams() {
    let server = real_server(|config| {
        config.token_delay = Duration::from_millis(5);
        config.rate_limit = 1000;
    })
    .await;
    let client = client(&server);
    let assistant = client
        .create_assistant(&named("Helper"))
        .await
        .expect("assistant");
    let mut threads = Vec::new();
    for index in 0..20 {
        let thread = client
            .create_thread(&ThreadCreate::default())
            .await
            .expect("thread");
        client
            .create_message(
                &thread.id,
                &MessageCreate::user(format!("message number {index}")),
            )
            .await
            .expect("message");
        threads.push(thread.id);
    }

    let runs = threads.iter().map(|thread_id| {
        let client = client.clone();
        let assistant_id = assistant.id.clone();
        let thread_id = thread_id.clone();
        tokio::spawn(async move {
            let stream = client.stream(&thread_id, &assistant_id, false).await?;
            Ok::<_, ApiError>(collect(stream).await)
        })
    });
    let results = futures::future::join_all(runs).await;

    for (index, result) in results.into_iter().enumerate() {
        let items = result.expect("task").expect("stream opens");
        let reply = final_message(&items).unwrap_or_else(|| panic!("stream {index}: {items:?}"));
        assert!(
            reply.content.contains(&format!("message number {index}")),
            "{}",
            reply.content
        );
        assert_eq!(deltas(&items), reply.content);
        assert!(matches!(items.last(), Some(Ok(StreamEvent::Done))));
    }
}

#[tokio::test]
async fn oversized_body_is_413() {
    let server = real_server(|config| config.max_body = 2000).await;
    let client = client(&server);
    let body = AssistantCreate {
        instructions: Some("x".repeat(5000)),
        ..named("Big")
    };

    let err = assert_api_error(
        client.create_assistant(&body).await,
        413,
        "request_too_large",
    );

    let ApiError::Api { kind, .. } = &err else {
        panic!("expected an API error");
    };
    assert_eq!(kind, "invalid_request_error");
    assert!(err.message().contains("2000"), "{err:?}");
}
