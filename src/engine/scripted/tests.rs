use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use super::*;
use crate::api::types::*;
use crate::engine::ScriptError;

fn assistant(tools: Vec<Tool>) -> Assistant {
    Assistant {
        id: "asst_1".into(),
        name: "Helper".into(),
        description: String::new(),
        instructions: String::new(),
        model: String::new(),
        tools,
        settings: Settings::default(),
        file_ids: vec![],
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn function(name: &str) -> Tool {
    Tool::Function(FunctionTool {
        kind: FunctionKind::Function,
        name: name.into(),
        description: String::new(),
        parameters: json!({"type": "object"}),
    })
}

fn message(role: Role, content: &str) -> Message {
    Message {
        id: "msg_x".into(),
        thread_id: "thread_1".into(),
        role,
        content: content.into(),
        created_at: String::new(),
        assistant_id: None,
        attachments: vec![],
        tool_calls: vec![],
        status: MessageStatus::Completed,
    }
}

fn builtin_engine() -> Scripted {
    match Script::builtin() {
        Ok(script) => Scripted::new(script, Duration::ZERO),
        Err(err) => panic!("built-in script is invalid: {err}"),
    }
}

fn request(tools: Vec<Tool>, messages: Vec<Message>) -> EngineRequest {
    EngineRequest {
        assistant: assistant(tools),
        messages,
    }
}

fn text_of(events: &[EngineEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Delta(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn greeting_names_assistant() {
    let events = builtin_engine().plan(&request(vec![], vec![message(Role::User, "hello there")]));
    let text = text_of(&events);
    assert!(text.starts_with("Hello! I'm Helper"), "{text}");
    assert_eq!(events.last(), Some(&EngineEvent::Done));
}

#[test]
fn fallback_quotes_message() {
    let events = builtin_engine().plan(&request(
        vec![],
        vec![message(Role::User, "first line\nsecond {tool} line")],
    ));
    let text = text_of(&events);
    assert!(
        text.contains("> first line\n> second {tool} line"),
        "{text}"
    );
}

#[test]
fn code_request_gets_fenced_block() {
    let events = builtin_engine().plan(&request(
        vec![],
        vec![message(Role::User, "show me some code")],
    ));
    assert!(text_of(&events).contains("```rust\n"));
}

#[test]
fn named_function_tool_is_called_with_pairs() {
    let events = builtin_engine().plan(&request(
        vec![function("lookup_user"), function("other")],
        vec![message(
            Role::User,
            "please lookup_user user_id=u42 name=\"Ada L\"",
        )],
    ));
    assert_eq!(
        events,
        vec![
            EngineEvent::ToolCall {
                name: "lookup_user".into(),
                arguments: json!({"user_id": "u42", "name": "Ada L"}),
            },
            EngineEvent::Done
        ]
    );
}

#[test]
fn named_tool_without_pairs_gets_empty_object() {
    let events = builtin_engine().plan(&request(
        vec![function("get_time")],
        vec![message(Role::User, "call get_time now")],
    ));
    assert_eq!(
        events.first(),
        Some(&EngineEvent::ToolCall {
            name: "get_time".into(),
            arguments: json!({})
        })
    );
}

#[test]
fn tool_name_must_be_whole_word() {
    let events = builtin_engine().plan(&request(
        vec![function("time")],
        vec![message(Role::User, "what a sometimes odd timeline")],
    ));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, EngineEvent::ToolCall { .. }))
    );
}

#[test]
fn reply_after_output_quotes_it() {
    let mut reply = message(Role::Assistant, "");
    reply.tool_calls = vec![ToolCallRecord {
        id: "call_1".into(),
        name: "lookup_user".into(),
        arguments: json!({}),
        status: ToolCallStatus::Completed,
        output: Some("{\"name\":\"Ada\"}".into()),
    }];
    let events = builtin_engine().plan(&request(
        vec![function("lookup_user")],
        vec![message(Role::User, "lookup_user"), reply],
    ));
    assert_eq!(
        text_of(&events),
        "The lookup_user tool returned: {\"name\":\"Ada\"}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, EngineEvent::ToolCall { .. }))
    );
}

#[test]
fn pending_calls_are_not_finished() {
    let mut reply = message(Role::Assistant, "");
    reply.tool_calls = vec![ToolCallRecord {
        id: "call_1".into(),
        name: "lookup_user".into(),
        arguments: json!({}),
        status: ToolCallStatus::RequiresAction,
        output: None,
    }];
    assert!(finished_tool_calls(&[reply]).is_none());
}

#[test]
fn custom_rules_match_in_order() -> Result<(), ScriptError> {
    let script = Script::parse(
        r#"
[[rules]]
contains = "WEATHER"
reply = "Checking."
tool_calls = [{ name = "get_weather", arguments = { city = "Paris" } }]
after_tools = "Forecast: {output}"

[[rules]]
pattern = '^\d+$'
reply = "a number"
"#,
        "test.toml",
        false,
    )?;
    let engine = Scripted::new(script, Duration::ZERO);
    let events = engine.plan(&request(vec![], vec![message(Role::User, "the weather?")]));
    assert_eq!(text_of(&events), "Checking.");
    assert!(events.contains(&EngineEvent::ToolCall {
        name: "get_weather".into(),
        arguments: json!({"city": "Paris"})
    }));
    let events = engine.plan(&request(vec![], vec![message(Role::User, "123")]));
    assert_eq!(text_of(&events), "a number");
    let events = engine.plan(&request(vec![], vec![message(Role::User, "abc")]));
    assert_eq!(
        text_of(&events),
        "No rule of the reply script matches this message."
    );
    Ok(())
}

#[test]
fn json_scripts_parse() -> Result<(), ScriptError> {
    let script = Script::parse(
        r#"{"rules": [{"contains": "x", "reply": "y"}]}"#,
        "s.json",
        true,
    )?;
    assert_eq!(script.rules.len(), 1);
    Ok(())
}

#[test]
fn invalid_scripts_name_file_and_problem() {
    let cases = [
        (
            "[[rules]]\npattern = '('\nreply = 'x'\n",
            "rule 1 has an invalid pattern",
        ),
        (
            "[[rules]]\npattern = 'a'\ncontains = 'b'\nreply = 'x'\n",
            "rule 1 sets both",
        ),
        (
            "[[rules]]\ncontains = 'b'\n",
            "rule 1 has neither reply nor tool_calls",
        ),
        ("[[rules]]\nreply = 'x'\ncolour = 'red'\n", "colour"),
        ("rules = 3\n", "invalid type"),
    ];
    for (text, expected) in cases {
        let err = Script::parse(text, "/tmp/bad.toml", false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/tmp/bad.toml"), "{err}");
        assert!(err.contains(expected), "expected {expected:?} in {err}");
    }
}

#[test]
fn missing_script_file_is_reported() {
    let err = Script::load(std::path::Path::new("/nonexistent/script.toml"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("cannot read script file /nonexistent/script.toml"),
        "{err}"
    );
}

#[test]
fn split_text_concatenates_back() {
    let text = "Hello  world\n\n```rust\nfn x() {}\n```\n é ";
    let pieces = split_text(text);
    assert_eq!(pieces.concat(), text);
    assert_eq!(pieces[0], "Hello");
    assert_eq!(pieces[1], "  world");
    assert!(split_text("").is_empty());
}

#[test]
fn key_value_pairs_parse() {
    assert_eq!(key_value_arguments("no pairs here"), json!({}));
    assert_eq!(
        key_value_arguments("a=1, b=two. c=\"x y\" d=é"),
        json!({"a": "1", "b": "two", "c": "x y", "d": "é"})
    );
}

#[tokio::test]
async fn stream_stops_when_cancelled() {
    let engine = Scripted::new(
        match Script::builtin() {
            Ok(script) => script,
            Err(err) => panic!("{err}"),
        },
        Duration::from_secs(5),
    );
    let cancel = CancellationToken::new();
    let mut stream = engine.reply(
        request(vec![], vec![message(Role::User, "hello there friend")]),
        cancel.clone(),
    );
    assert!(matches!(stream.next().await, Some(EngineEvent::Delta(_))));
    cancel.cancel();
    let next = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
    assert_eq!(next.ok(), Some(None));
}

#[tokio::test]
async fn stream_yields_plan_in_order() {
    let engine = builtin_engine();
    let req = request(vec![], vec![message(Role::User, "thanks!")]);
    let planned = engine.plan(&req);
    let streamed: Vec<_> = engine.reply(req, CancellationToken::new()).collect().await;
    assert_eq!(streamed, planned);
}

#[tokio::test]
async fn pacing_counts_from_first_piece() {
    let delay = Duration::from_millis(2);
    let mut pacing = Pacing::new(delay);
    assert_eq!(pacing.next_due(), None, "the first piece is due at once");
    let Some(start) = pacing.start else {
        panic!("the first piece sets the start");
    };
    for index in 1..=1_000u32 {
        let due = pacing.next_due();
        assert_eq!(due, Some(start + delay * index), "piece {index}");
    }
}

#[tokio::test]
async fn pacing_without_delay_never_waits() {
    let mut pacing = Pacing::new(Duration::ZERO);
    for _ in 0..10 {
        assert_eq!(pacing.next_due(), None);
    }
}
