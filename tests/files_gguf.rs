//! The knowledge_base tool with the real embedded model: the passages found for the
//! question reach the model's prompt, and its answer uses them.
//!
//! Skipped, with the reason printed, when the default model file is absent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use assisters::api::client::FileUpload;
use assisters::api::types::*;
use assisters::api::{Client, ClientConfig};
use assisters::config::Paths;
use assisters::engine::gguf::GgufEngine;
use assisters::server::{EngineChoice, ServerConfig};
use futures::StreamExt;

const KEY: &str = "test-key-gguf-files";

#[tokio::test]
async fn the_embedded_model_answers_from_an_uploaded_document() {
    let Some(paths) = Paths::discover() else {
        eprintln!("skipped: no home directory, so no default model path");
        return;
    };
    let model = assisters::model::default_model_path(&paths);
    if !model.is_file() {
        eprintln!(
            "skipped: the default model {} is absent; run `assisters model fetch`",
            model.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path().join("db.sqlite"), KEY);
    config.engine = EngineChoice::Instance(Arc::new(GgufEngine::spawn_load(model, 2048)));
    let server = assisters::server::spawn(config).await.unwrap();
    let mut client_config = ClientConfig::new(server.base_url(), Some(KEY.to_owned()));
    client_config.read_timeout = Duration::from_secs(120);
    let client = Client::new(client_config).unwrap();

    let document = "Pet register.\n\nThe cat of the lighthouse keeper is named Biscuit.";
    let file = client
        .upload_file(FileUpload {
            filename: "pets.txt".into(),
            purpose: PURPOSE_KNOWLEDGE_BASE.into(),
            bytes: document.as_bytes().to_vec(),
        })
        .await
        .unwrap();
    let assistant = client
        .create_assistant(&AssistantCreate {
            name: "Local".into(),
            instructions: Some("Answer briefly from the passages you are given.".into()),
            tools: Some(vec![Tool::Builtin("knowledge_base".into())]),
            file_ids: Some(vec![file.id]),
            settings: Some(Settings {
                temperature: Some(0.0),
                top_p: None,
            }),
            ..AssistantCreate::default()
        })
        .await
        .unwrap();
    let thread = client
        .create_thread(&ThreadCreate::default())
        .await
        .unwrap();
    client
        .create_message(
            &thread.id,
            &MessageCreate::user("What is the name of the lighthouse keeper's cat?"),
        )
        .await
        .unwrap();
    let stream = client
        .stream(&thread.id, &assistant.id, false)
        .await
        .unwrap();
    let events: Vec<StreamEvent> =
        tokio::time::timeout(Duration::from_secs(300), stream.collect::<Vec<_>>())
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
    let output = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::ToolResult { name, output, .. } if name == "knowledge_base" => {
                Some(output.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no knowledge_base result in {events:?}"));
    assert!(
        output.contains("[1] pets.txt:") && output.contains("Biscuit"),
        "{output}"
    );
    let reply = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::Final(message) => Some(message.content.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no final reply in {events:?}"));
    assert!(
        reply.contains("Biscuit"),
        "the model did not use the passage: {reply:?}"
    );
    server.shutdown().await.unwrap();
}
