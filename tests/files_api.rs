//! Files and the knowledge_base tool through the real server and the typed client:
//! uploads of each accepted type, malformed uploads that leave the database as it
//! was, unknown file ids, and replies grounded in an uploaded document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::time::Duration;

use assisters::api::client::FileUpload;
use assisters::api::types::*;
use assisters::api::{ApiError, Client, ClientConfig};
use futures::StreamExt;
use server_support::{KEY, TestServer, db_path, start_with};

const DOCUMENT: &str = "# Station handbook\n\nThe vault access code is PELICAN-42. Change it \
every spring.\n\nThe greenhouse is watered at dawn with rain water from the north tank.\n\n\
Visitors sign the blue ledger at the front desk.";

fn client(server: &TestServer) -> Client {
    let mut config = ClientConfig::new(server.base.clone(), Some(KEY.to_owned()));
    config.max_retries = 0;
    config.read_timeout = Duration::from_secs(20);
    Client::new(config).unwrap()
}

fn upload(filename: &str, bytes: &[u8]) -> FileUpload {
    FileUpload {
        filename: filename.to_owned(),
        purpose: PURPOSE_KNOWLEDGE_BASE.to_owned(),
        bytes: bytes.to_vec(),
    }
}

/// Row counts of `files` and `passages`, read from the database file itself.
fn counts(server: &TestServer) -> (u64, u64) {
    let conn = rusqlite::Connection::open(db_path(server)).unwrap();
    assisters::server::store::file_counts(&conn).unwrap()
}

/// A one-page PDF whose page shows `text` in Helvetica, with a correct xref table.
pub fn tiny_pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

fn api_error(result: Result<File, ApiError>) -> (u16, String, Option<String>) {
    match result {
        Err(ApiError::Api {
            status,
            message,
            param,
            ..
        }) => (status, message, param),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn files_upload_list_show_and_delete() {
    let server = start_with(|_| {}).await;
    let client = client(&server);
    let file = client
        .upload_file(upload("handbook.md", DOCUMENT.as_bytes()))
        .await
        .unwrap();
    assert!(file.id.starts_with(FILE_PREFIX), "{file:?}");
    assert_eq!(file.filename, "handbook.md");
    assert_eq!(file.content_type, "text/markdown");
    assert_eq!(file.bytes, DOCUMENT.len() as u64);
    assert!(file.passages >= 1);
    assert_eq!(counts(&server), (1, file.passages));

    let page = client.list_files(20, 0).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.data[0], file);
    assert_eq!(client.get_file(&file.id).await.unwrap(), file);

    let deleted = client.delete_file(&file.id).await.unwrap();
    assert!(deleted.deleted);
    let missing = client.get_file(&file.id).await.err().unwrap();
    assert_eq!(missing.status(), Some(404));
    assert!(missing.to_string().contains(&file.id), "{missing}");
    assert_eq!(counts(&server), (0, 0));
}

#[tokio::test]
async fn pdf_text_is_extracted_and_indexed() {
    let server = start_with(|_| {}).await;
    let client = client(&server);
    let pdf = tiny_pdf("The lighthouse lamp is serviced on Tuesdays.");
    let file = client.upload_file(upload("lamp.pdf", &pdf)).await.unwrap();
    assert_eq!(file.content_type, "application/pdf");
    assert_eq!(counts(&server), (1, file.passages));
    let conn = rusqlite::Connection::open(db_path(&server)).unwrap();
    let hits = assisters::server::store::search_passages(
        &conn,
        std::slice::from_ref(&file.id),
        "\"lighthouse\"",
        3,
    )
    .unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(hits[0].content.contains("Tuesdays"), "{hits:?}");
}

#[tokio::test]
async fn malformed_uploads_rejected_unchanged_db() {
    let server = start_with(|config| config.max_upload = 4096).await;
    let client = client(&server);
    let kept = client
        .upload_file(upload("handbook.md", DOCUMENT.as_bytes()))
        .await
        .unwrap();
    let before = counts(&server);
    assert_eq!(before, (1, kept.passages));

    let (status, message, param) = api_error(client.upload_file(upload("empty.txt", b"")).await);
    assert_eq!((status, param.as_deref()), (400, Some("file")), "{message}");
    assert!(message.contains("empty"), "{message}");

    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    let (status, message, _) = api_error(client.upload_file(upload("photo.png", png)).await);
    assert_eq!(status, 400, "{message}");
    assert!(message.contains(".png"), "{message}");

    let big = "word ".repeat(2000);
    let (status, message, _) =
        api_error(client.upload_file(upload("big.txt", big.as_bytes())).await);
    assert_eq!(status, 413, "{message}");
    assert!(message.contains("4096"), "{message}");

    let broken = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer <<";
    let (status, message, _) = api_error(client.upload_file(upload("broken.pdf", broken)).await);
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("PDF"), "{message}");

    let mut wrong_purpose = upload("notes.txt", b"some notes");
    wrong_purpose.purpose = "fine_tune".to_owned();
    let (status, message, param) = api_error(client.upload_file(wrong_purpose).await);
    assert_eq!(
        (status, param.as_deref()),
        (400, Some("purpose")),
        "{message}"
    );

    let not_multipart = server
        .raw(reqwest::Method::POST, "/files", r#"{"file": "x"}"#)
        .await;
    assert_eq!(not_multipart.status, 400, "{}", not_multipart.text);
    assert!(not_multipart.body["error"]["message"].is_string());

    let part = |name: &str| {
        reqwest::multipart::Part::bytes(b"some notes".to_vec()).file_name(name.to_owned())
    };
    let two_files = reqwest::multipart::Form::new()
        .text("purpose", "knowledge_base")
        .part("file", part("a.txt"))
        .part("file", part("b.txt"));
    let request = server
        .http
        .post(server.url("/files"))
        .bearer_auth(KEY)
        .multipart(two_files);
    let reply = server.send(request).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body["error"]["param"], "file", "{}", reply.text);

    assert_eq!(counts(&server), before);
    assert_eq!(client.list_files(20, 0).await.unwrap().total, 1);
}

#[tokio::test]
async fn unknown_file_ids_are_404s_naming_the_id() {
    let server = start_with(|_| {}).await;
    let client = client(&server);
    let file = client
        .upload_file(upload("handbook.md", DOCUMENT.as_bytes()))
        .await
        .unwrap();
    let create = AssistantCreate {
        name: "Librarian".into(),
        file_ids: Some(vec![file.id.clone(), "file_missing".into()]),
        ..AssistantCreate::default()
    };
    let err = client.create_assistant(&create).await.err().unwrap();
    assert_eq!(err.status(), Some(404));
    assert!(err.to_string().contains("file_missing"), "{err}");
    assert_eq!(client.list_assistants(20, 0).await.unwrap().total, 0);

    let thread = client
        .create_thread(&ThreadCreate::default())
        .await
        .unwrap();
    let mut message = MessageCreate::user("read this");
    message.attachments = vec![Attachment {
        kind: "file".into(),
        file_id: "file_gone".into(),
    }];
    let err = client
        .create_message(&thread.id, &message)
        .await
        .err()
        .unwrap();
    assert_eq!(err.status(), Some(404));
    assert!(err.to_string().contains("file_gone"), "{err}");
    assert!(
        client
            .list_messages(&thread.id, 20, 0)
            .await
            .unwrap()
            .data
            .is_empty()
    );
}

/// Runs one streamed turn and returns its events.
async fn turn(
    client: &Client,
    thread: &str,
    assistant: &str,
    message: MessageCreate,
) -> Vec<StreamEvent> {
    client.create_message(thread, &message).await.unwrap();
    let stream = client.stream(thread, assistant, false).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), stream.collect::<Vec<_>>())
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

fn final_text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .find_map(|event| match event {
            StreamEvent::Final(message) => Some(message.content.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no final event in {events:?}"))
}

fn knowledge_result(events: &[StreamEvent]) -> (Value, String) {
    let arguments = events
        .iter()
        .find_map(|event| match event {
            StreamEvent::ToolCall {
                name, arguments, ..
            } if name == "knowledge_base" => Some(arguments.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no knowledge_base call in {events:?}"));
    let output = events
        .iter()
        .find_map(|event| match event {
            StreamEvent::ToolResult {
                name,
                output,
                status,
                ..
            } if name == "knowledge_base" => {
                assert_eq!(*status, ToolCallStatus::Completed, "{output}");
                Some(output.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no knowledge_base result in {events:?}"));
    (arguments, output)
}

use serde_json::Value;

#[tokio::test]
async fn scripted_reply_quotes_the_assistants_document() {
    let server = start_with(|_| {}).await;
    let client = client(&server);
    let file = client
        .upload_file(upload("handbook.md", DOCUMENT.as_bytes()))
        .await
        .unwrap();
    let assistant = client
        .create_assistant(&AssistantCreate {
            name: "Librarian".into(),
            tools: Some(vec![Tool::Builtin("knowledge_base".into())]),
            file_ids: Some(vec![file.id.clone()]),
            ..AssistantCreate::default()
        })
        .await
        .unwrap();
    let thread = client
        .create_thread(&ThreadCreate::default())
        .await
        .unwrap();
    let question = "What is the vault access code?";
    let events = turn(
        &client,
        &thread.id,
        &assistant.id,
        MessageCreate::user(question),
    )
    .await;
    let (arguments, output) = knowledge_result(&events);
    assert_eq!(arguments["query"], question);
    assert!(output.starts_with("[1] handbook.md:"), "{output}");
    assert!(output.contains("PELICAN-42"), "{output}");
    let text = final_text(&events);
    assert!(text.contains("PELICAN-42"), "{text}");
    // The saved history shows the same tool call.
    let saved = client.list_messages(&thread.id, 20, 0).await.unwrap();
    let reply = saved.data.last().unwrap();
    assert_eq!(reply.tool_calls[0].name, "knowledge_base");
    assert_eq!(reply.tool_calls[0].output.as_deref(), Some(output.as_str()));
}

#[tokio::test]
async fn attached_file_is_searchable_in_its_thread_only() {
    let server = start_with(|_| {}).await;
    let client = client(&server);
    let file = client
        .upload_file(upload("handbook.txt", DOCUMENT.as_bytes()))
        .await
        .unwrap();
    let assistant = client
        .create_assistant(&AssistantCreate {
            name: "Reader".into(),
            tools: Some(vec![Tool::Builtin("knowledge_base".into())]),
            ..AssistantCreate::default()
        })
        .await
        .unwrap();
    let thread = client
        .create_thread(&ThreadCreate::default())
        .await
        .unwrap();
    let mut message = MessageCreate::user("When is the greenhouse watered?");
    message.attachments = vec![Attachment {
        kind: "file".into(),
        file_id: file.id.clone(),
    }];
    let events = turn(&client, &thread.id, &assistant.id, message).await;
    let (_, output) = knowledge_result(&events);
    assert!(output.contains("watered at dawn"), "{output}");
    assert!(final_text(&events).contains("watered at dawn"));

    // Another thread without the attachment makes no search.
    let other = client
        .create_thread(&ThreadCreate::default())
        .await
        .unwrap();
    let events = turn(
        &client,
        &other.id,
        &assistant.id,
        MessageCreate::user("When is the greenhouse watered?"),
    )
    .await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, StreamEvent::ToolCall { .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn search_syntax_in_a_question_is_plain_text() {
    let server = start_with(|_| {}).await;
    let client = client(&server);
    let file = client
        .upload_file(upload("handbook.md", DOCUMENT.as_bytes()))
        .await
        .unwrap();
    let assistant = client
        .create_assistant(&AssistantCreate {
            name: "Librarian".into(),
            tools: Some(vec![Tool::Builtin("knowledge_base".into())]),
            file_ids: Some(vec![file.id]),
            ..AssistantCreate::default()
        })
        .await
        .unwrap();
    let thread = client
        .create_thread(&ThreadCreate::default())
        .await
        .unwrap();
    let hostile = "ledger\" OR NEAR(vault* code) AND content:x -( ^\"";
    let events = turn(
        &client,
        &thread.id,
        &assistant.id,
        MessageCreate::user(hostile),
    )
    .await;
    let (_, output) = knowledge_result(&events);
    assert!(
        output.contains("blue ledger") || output.contains("vault"),
        "{output}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, StreamEvent::Error(_))),
        "{events:?}"
    );
}
