//! The REST endpoints over real HTTP: CRUD, validation, pagination, auth and limits.

mod server_support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server_support::*;

fn assert_error(reply: &Reply, status: StatusCode, code: &str, kind: &str, param: Option<&str>) {
    assert_eq!(reply.status, status, "{}", reply.text);
    let (got_code, got_kind, got_param) = reply.error();
    assert_eq!(got_code, code, "{}", reply.text);
    assert_eq!(got_kind, kind, "{}", reply.text);
    assert_eq!(got_param.as_deref(), param, "{}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{}",
        reply.text
    );
}

fn assert_invalid(reply: &Reply, param: Option<&str>) {
    assert_error(
        reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "validation_error",
        param,
    );
}

#[tokio::test]
async fn assistant_crud_round_trip() {
    let server = start().await;
    let created = server
        .post(
            "/assisters",
            json!({
                "name": "Support Bot",
                "description": "Handles questions",
                "instructions": "Be brief",
                "model": "local",
                "tools": ["web_search", {"type": "function", "name": "lookup_user",
                    "description": "Find a user",
                    "parameters": {"type": "object", "properties": {"user_id": {"type": "string"}}}}],
                "settings": {"temperature": 0.7, "top_p": 1.0}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();
    assert!(id.starts_with("asst_"), "{id}");
    assert_eq!(created.body["tools"][1]["name"], json!("lookup_user"));
    assert_eq!(created.body["settings"]["temperature"], json!(0.7));
    assert!(
        created.body["created_at"]
            .as_str()
            .unwrap_or_default()
            .ends_with('Z')
    );

    let shown = server.get(&format!("/assisters/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body, created.body);

    let updated = server
        .post(
            &format!("/assisters/{id}"),
            json!({"instructions": "Be kind"}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.body["instructions"], json!("Be kind"));
    assert_eq!(updated.body["name"], json!("Support Bot"));
    assert_eq!(updated.body["tools"], created.body["tools"]);
    assert_eq!(updated.body["created_at"], created.body["created_at"]);

    let unchanged = server.post(&format!("/assisters/{id}"), json!({})).await;
    assert_eq!(unchanged.status, StatusCode::OK);
    assert_eq!(unchanged.body["instructions"], json!("Be kind"));

    let deleted = server.delete(&format!("/assisters/{id}")).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body, json!({"id": id, "deleted": true}));
    let gone = server.get(&format!("/assisters/{id}")).await;
    assert_error(
        &gone,
        StatusCode::NOT_FOUND,
        "not_found",
        "invalid_request_error",
        None,
    );
    assert!(
        gone.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&id)
    );
    let again = server.delete(&format!("/assisters/{id}")).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let update_gone = server
        .post(&format!("/assisters/{id}"), json!({"name": "x"}))
        .await;
    assert_eq!(update_gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn missing_name_is_documented_error() {
    let server = start().await;
    let reply = server
        .post("/assisters", json!({"description": "Missing name"}))
        .await;
    assert_invalid(&reply, Some("name"));
    assert_eq!(reply.body["error"]["message"], json!("name is required"));
}

#[tokio::test]
async fn assistant_fields_are_validated() {
    let server = start().await;
    let long = "x".repeat(257);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": 5}), "name"),
        (json!({"name": "  "}), "name"),
        (json!({"name": long}), "name"),
        (json!({"name": "a", "colour": "red"}), "colour"),
        (json!({"name": "a", "description": ["x"]}), "description"),
        (json!({"name": "a", "model": "m".repeat(129)}), "model"),
        (json!({"name": "a", "tools": "web_search"}), "tools"),
        (json!({"name": "a", "tools": ["telepathy"]}), "tools[0]"),
        (
            json!({"name": "a", "tools": ["web_search", "web_search"]}),
            "tools[1]",
        ),
        (
            json!({"name": "a", "tools": [{"type": "function"}]}),
            "tools[0].name",
        ),
        (
            json!({"name": "a", "tools": [{"type": "function", "name": "bad name"}]}),
            "tools[0].name",
        ),
        (
            json!({"name": "a", "tools": [{"type": "plugin", "name": "x"}]}),
            "tools[0].type",
        ),
        (
            json!({"name": "a", "tools": [{"name": "x", "parameters": 3}]}),
            "tools[0].parameters",
        ),
        (
            json!({"name": "a", "tools": [{"name": "x", "extra": 1}]}),
            "tools[0].extra",
        ),
        (
            json!({"name": "a", "settings": {"temperature": 3}}),
            "settings.temperature",
        ),
        (
            json!({"name": "a", "settings": {"top_p": "high"}}),
            "settings.top_p",
        ),
        (
            json!({"name": "a", "settings": {"seed": 1}}),
            "settings.seed",
        ),
        (json!({"name": "a", "settings": []}), "settings"),
        (json!({"name": "a", "file_ids": ["doc_1"]}), "file_ids[0]"),
    ];
    for (body, param) in cases {
        let reply = server.post("/assisters", body.clone()).await;
        assert_invalid(&reply, Some(param));
    }
    let listed = server.get("/assisters").await;
    assert_eq!(
        listed.body["total"],
        json!(0),
        "invalid bodies must store nothing"
    );
    let id = server.assistant(json!({"name": "ok"})).await;
    let reply = server
        .post(&format!("/assisters/{id}"), json!({"name": ""}))
        .await;
    assert_invalid(&reply, Some("name"));
}

#[tokio::test]
async fn malformed_bodies_get_json_errors() {
    let server = start().await;
    for body in ["{", "[1,2]", "\"text\"", "{\"name\": \"a\",}", "\u{0}"] {
        let reply = server
            .raw(Method::POST, "/assisters", body.to_owned())
            .await;
        assert_invalid(&reply, None);
    }
    let reply = server
        .raw(Method::POST, "/assisters", vec![0xff_u8, 0xfe])
        .await;
    assert_invalid(&reply, None);
    // An empty body on create is an object without `name`.
    let reply = server.raw(Method::POST, "/assisters", "").await;
    assert_invalid(&reply, Some("name"));
}

#[tokio::test]
async fn body_over_limit_is_413() {
    let server = start_with(|config| config.max_body = 1024).await;
    let big = json!({"name": "a", "instructions": "x".repeat(2000)}).to_string();
    let reply = server.raw(Method::POST, "/assisters", big).await;
    assert_error(
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        "invalid_request_error",
        None,
    );
    // Without Content-Length too (chunked body).
    let chunks = vec![
        Ok::<_, std::io::Error>("{\"name\":\"".to_owned()),
        Ok("y".repeat(5000)),
        Ok("\"}".to_owned()),
    ];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let reply = server.raw(Method::POST, "/assisters", body).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );
    // The server keeps serving on fresh requests.
    assert_eq!(server.get("/assisters").await.status, StatusCode::OK);
}

#[tokio::test]
async fn default_body_limit_is_one_mebibyte() {
    let server = start().await;
    let content = "x".repeat(1024 * 1024);
    let reply = server
        .raw(
            Method::POST,
            "/threads",
            json!({"metadata": {"k": content}}).to_string(),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn pagination_edges() {
    let server = start().await;
    let mut ids = Vec::new();
    for index in 0..5 {
        ids.push(server.assistant(json!({"name": format!("a{index}")})).await);
    }
    let page = server.get("/assisters?limit=2").await;
    assert_eq!(page.body["total"], json!(5));
    assert_eq!(page.body["has_more"], json!(true));
    assert_eq!(page.body["data"][0]["id"], json!(ids[4]), "newest first");
    assert_eq!(page.body["data"][1]["id"], json!(ids[3]));
    let last = server.get("/assisters?limit=2&offset=4").await;
    assert_eq!(last.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(last.body["has_more"], json!(false));
    let exact = server.get("/assisters?limit=5").await;
    assert_eq!(exact.body["has_more"], json!(false));
    let beyond = server.get("/assisters?offset=50").await;
    assert_eq!(beyond.body["data"], json!([]));
    assert_eq!(beyond.body["total"], json!(5));
    let full = server.get("/assisters?limit=100").await;
    assert_eq!(full.status, StatusCode::OK);
    let default = server.get("/assisters").await;
    assert_eq!(default.body["data"].as_array().map(Vec::len), Some(5));
    let repeated = server.get("/assisters?limit=3&limit=1").await;
    assert_eq!(
        repeated.body["data"].as_array().map(Vec::len),
        Some(1),
        "a repeated parameter keeps its last value"
    );

    for query in ["limit=0", "limit=101", "limit=-1", "limit=ten", "limit="] {
        let reply = server.get(&format!("/assisters?{query}")).await;
        assert_invalid(&reply, Some("limit"));
        let reply = server.get(&format!("/threads?{query}")).await;
        assert_invalid(&reply, Some("limit"));
    }
    for query in ["offset=-1", "offset=x"] {
        let reply = server.get(&format!("/assisters?{query}")).await;
        assert_invalid(&reply, Some("offset"));
    }
}

#[tokio::test]
async fn threads_crud_and_filter() {
    let server = start().await;
    let tagged = server
        .post(
            "/threads",
            json!({"metadata": {"assistant_id": "asst_a", "user_id": "u1"}}),
        )
        .await;
    assert_eq!(tagged.status, StatusCode::CREATED);
    let tagged_id = tagged.body["id"].as_str().unwrap_or_default().to_owned();
    assert!(tagged_id.starts_with("thread_"));
    assert_eq!(tagged.body["metadata"]["user_id"], json!("u1"));
    let plain = server.raw(Method::POST, "/threads", "").await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.text);
    assert_eq!(plain.body["metadata"], json!({}));

    let all = server.get("/threads").await;
    assert_eq!(all.body["total"], json!(2));
    assert_eq!(all.body["data"][0]["id"], plain.body["id"], "newest first");
    let filtered = server.get("/threads?assistant_id=asst_a").await;
    assert_eq!(filtered.body["total"], json!(1));
    assert_eq!(filtered.body["data"][0]["id"], json!(tagged_id));
    let none = server.get("/threads?assistant_id=asst_other").await;
    assert_eq!(none.body["total"], json!(0));

    let shown = server.get(&format!("/threads/{tagged_id}")).await;
    assert_eq!(shown.body, tagged.body);
    server.user_message(&tagged_id, "hi").await;
    let deleted = server.delete(&format!("/threads/{tagged_id}")).await;
    assert_eq!(deleted.body, json!({"id": tagged_id, "deleted": true}));
    let gone = server.get(&format!("/threads/{tagged_id}/messages")).await;
    assert_error(
        &gone,
        StatusCode::NOT_FOUND,
        "not_found",
        "invalid_request_error",
        None,
    );
    assert_eq!(
        server.get(&format!("/threads/{tagged_id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.delete(&format!("/threads/{tagged_id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn thread_metadata_is_validated() {
    let server = start().await;
    let many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"metadata": many}), "metadata"),
        (json!({"metadata": {"n": 1}}), "metadata.n"),
        (json!({"metadata": {"n": null}}), "metadata.n"),
        (json!({"metadata": {"v": "x".repeat(513)}}), "metadata.v"),
        (json!({"metadata": "x"}), "metadata"),
        (json!({"metadata": {}, "title": "x"}), "title"),
    ];
    for (body, param) in cases {
        let reply = server.post("/threads", body).await;
        assert_invalid(&reply, Some(param));
    }
    let sixteen: serde_json::Map<String, Value> =
        (0..16).map(|i| (format!("k{i}"), json!("v"))).collect();
    let ok = server.post("/threads", json!({"metadata": sixteen})).await;
    assert_eq!(ok.status, StatusCode::CREATED);
}

#[tokio::test]
async fn messages_append_and_list_oldest_first() {
    let server = start().await;
    let thread = server.thread().await;
    // Attached files must exist, so upload one first.
    let form = reqwest::multipart::Form::new()
        .text("purpose", "assistants")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"notes".to_vec()).file_name("notes.txt"),
        );
    let upload = server
        .send(
            server
                .http
                .post(server.url("/files"))
                .bearer_auth(KEY)
                .multipart(form),
        )
        .await;
    assert_eq!(upload.status, StatusCode::CREATED, "{}", upload.text);
    let file_abc = upload.body["id"].as_str().unwrap_or_default().to_owned();
    let created = server
        .post(
            &format!("/threads/{thread}/messages"),
            json!({"role": "user", "content": "first",
                   "attachments": [{"type": "file", "file_id": file_abc}]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(
        created.body["id"]
            .as_str()
            .unwrap_or_default()
            .starts_with("msg_")
    );
    assert_eq!(created.body["role"], json!("user"));
    assert_eq!(created.body["thread_id"], json!(thread));
    assert_eq!(created.body["attachments"][0]["file_id"], json!(file_abc));
    for index in 0..4 {
        server.user_message(&thread, &format!("m{index}")).await;
    }
    let page = server
        .get(&format!("/threads/{thread}/messages?limit=2&offset=1"))
        .await;
    assert_eq!(page.body["total"], json!(5));
    assert_eq!(page.body["has_more"], json!(true));
    assert_eq!(page.body["data"][0]["content"], json!("m0"));
    assert_eq!(page.body["data"][1]["content"], json!("m1"));
    let all = server.messages(&thread).await;
    let contents: Vec<_> = all.iter().map(|m| m["content"].clone()).collect();
    assert_eq!(
        contents,
        [
            json!("first"),
            json!("m0"),
            json!("m1"),
            json!("m2"),
            json!("m3")
        ]
    );
}

#[tokio::test]
async fn message_bodies_are_validated() {
    let server = start().await;
    let thread = server.thread().await;
    let path = format!("/threads/{thread}/messages");
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "content"),
        (json!({"content": ""}), "content"),
        (json!({"content": 5}), "content"),
        (json!({"content": "x".repeat(65_537)}), "content"),
        (json!({"content": "x", "role": "assistant"}), "role"),
        (json!({"content": "x", "role": "system"}), "role"),
        (json!({"content": "x", "attachments": {}}), "attachments"),
        (
            json!({"content": "x", "attachments": [{"file_id": 3}]}),
            "attachments[0].file_id",
        ),
        (
            json!({"content": "x", "attachments": [{"type": "image", "file_id": "file_1"}]}),
            "attachments[0].type",
        ),
        (
            json!({"content": "x", "attachments": [{}]}),
            "attachments[0].file_id",
        ),
        (json!({"content": "x", "metadata": {}}), "metadata"),
    ];
    for (body, param) in cases {
        let reply = server.post(&path, body).await;
        assert_invalid(&reply, Some(param));
    }
    assert!(
        server.messages(&thread).await.is_empty(),
        "rejected messages must not be stored"
    );
    let unknown_thread = server
        .post("/threads/thread_nope/messages", json!({"content": "x"}))
        .await;
    assert_error(
        &unknown_thread,
        StatusCode::NOT_FOUND,
        "not_found",
        "invalid_request_error",
        None,
    );
    let unknown_assistant = server
        .post(&path, json!({"content": "x", "assistant_id": "asst_nope"}))
        .await;
    assert_error(
        &unknown_assistant,
        StatusCode::NOT_FOUND,
        "not_found",
        "invalid_request_error",
        Some("assistant_id"),
    );
    assert!(server.messages(&thread).await.is_empty());
}

#[tokio::test]
async fn auth_failures_are_401_without_rate_headers() {
    let server = start().await;
    let url = server.url("/assisters");
    let requests = [
        server.http.get(&url),
        server.http.get(&url).bearer_auth("wrong-key"),
        server
            .http
            .get(&url)
            .header("authorization", format!("Basic {KEY}")),
        server.http.get(&url).bearer_auth(format!("{KEY}x")),
        server.http.get(server.url("/no/such/route")),
    ];
    for request in requests {
        let reply = server.send(request).await;
        assert_error(
            &reply,
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "authentication_error",
            None,
        );
        assert_eq!(reply.header("x-ratelimit-limit"), None);
        assert_eq!(reply.header("x-ratelimit-remaining"), None);
        assert!(
            reply
                .header("x-request-id")
                .is_some_and(|id| id.starts_with("req_"))
        );
        assert!(!reply.text.contains(KEY));
    }
    // Failed attempts do not count against the key.
    let ok = server.get("/assisters").await;
    assert_eq!(ok.header("x-ratelimit-remaining"), Some("99"));
}

#[tokio::test]
async fn several_keys_are_accepted() {
    let server = start_with(|config| config.api_keys.push("second-key".into())).await;
    let reply = server
        .send(
            server
                .http
                .get(server.url("/assisters"))
                .bearer_auth("second-key"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_headers_and_429() {
    let server = start_with(|config| config.rate_limit = 3).await;
    let first = server.get("/assisters").await;
    assert_eq!(first.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("2"));
    let reset: u64 = first
        .header("x-ratelimit-reset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((59..=60).contains(&reset), "reset {reset}");
    // A 404 counts and carries the headers too.
    let missing = server.get("/assisters/asst_nope").await;
    assert_eq!(missing.header("x-ratelimit-remaining"), Some("1"));
    let third = server.get("/threads").await;
    assert_eq!(third.header("x-ratelimit-remaining"), Some("0"));
    let limited = server.get("/assisters").await;
    assert_error(
        &limited,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_exceeded",
        "rate_limit_error",
        None,
    );
    let retry: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(
        limited.header("x-ratelimit-reset"),
        limited.header("retry-after")
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json() {
    let server = start().await;
    let reply = server.get("/nothing-here").await;
    assert_error(
        &reply,
        StatusCode::NOT_FOUND,
        "not_found",
        "invalid_request_error",
        None,
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("GET /v1/nothing-here"), "{message}");
    let reply = server
        .send(
            server
                .http
                .get(format!("{}/../", server.base))
                .bearer_auth(KEY),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = server.call(Method::PUT, "/assisters", None).await;
    assert_error(
        &reply,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "invalid_request_error",
        None,
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("PUT /v1/assisters"), "{message}");
    assert!(
        reply
            .header("allow")
            .is_some_and(|allow| allow.contains("GET")),
        "{:?}",
        reply.headers
    );
    assert!(reply.header("x-ratelimit-limit").is_some());
    let reply = server.call(Method::PATCH, "/threads/thread_x", None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.header("x-request-id").is_some());
}

#[tokio::test]
async fn tool_output_errors() {
    let server = start().await;
    let thread = server.thread().await;
    let path = format!("/threads/{thread}/tool_outputs");
    let reply = server
        .post(&path, json!({"tool_call_id": "call_nope", "output": "x"}))
        .await;
    assert_error(
        &reply,
        StatusCode::NOT_FOUND,
        "not_found",
        "invalid_request_error",
        Some("tool_call_id"),
    );
    let reply = server.post(&path, json!({"output": "x"})).await;
    assert_invalid(&reply, Some("tool_call_id"));
    let reply = server.post(&path, json!({"tool_call_id": "call_1"})).await;
    assert_invalid(&reply, Some("output"));
    let reply = server
        .post(&path, json!({"tool_call_id": "call_1", "output": 5}))
        .await;
    assert_invalid(&reply, Some("output"));
    let reply = server
        .post(
            "/threads/thread_nope/tool_outputs",
            json!({"tool_call_id": "call_1", "output": "x"}),
        )
        .await;
    assert_error(
        &reply,
        StatusCode::NOT_FOUND,
        "not_found",
        "invalid_request_error",
        None,
    );
}
