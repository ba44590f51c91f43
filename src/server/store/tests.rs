use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::api::types::*;

fn store() -> Store {
    match Store::open_in_memory() {
        Ok(store) => store,
        Err(err) => panic!("cannot open store: {err}"),
    }
}

fn assistant(id: &str) -> Assistant {
    Assistant {
        id: id.to_owned(),
        name: format!("name of {id}"),
        description: "d".into(),
        instructions: "i".into(),
        model: "m".into(),
        tools: vec![
            Tool::Builtin("web_search".into()),
            Tool::Function(FunctionTool {
                kind: FunctionKind::Function,
                name: "lookup_user".into(),
                description: "Look up".into(),
                parameters: json!({"type": "object"}),
            }),
        ],
        settings: Settings {
            temperature: Some(0.5),
            top_p: None,
        },
        file_ids: vec![],
        created_at: "2025-01-01T00:00:00Z".into(),
        updated_at: "2025-01-01T00:00:00Z".into(),
    }
}

fn message(id: &str, thread_id: &str, role: Role) -> Message {
    Message {
        id: id.to_owned(),
        thread_id: thread_id.to_owned(),
        role,
        content: format!("content of {id}"),
        created_at: "2025-01-01T00:00:00Z".into(),
        assistant_id: None,
        attachments: vec![],
        tool_calls: vec![],
        status: MessageStatus::Completed,
    }
}

fn thread(id: &str, assistant_id: Option<&str>) -> Thread {
    let mut metadata = BTreeMap::new();
    if let Some(assistant_id) = assistant_id {
        metadata.insert("assistant_id".to_owned(), assistant_id.to_owned());
    }
    Thread {
        id: id.to_owned(),
        created_at: "2025-01-01T00:00:00Z".into(),
        metadata,
    }
}

#[test]
fn assistant_round_trips() -> Result<(), StoreError> {
    store().with(|conn| {
        let original = assistant("asst_a");
        insert_assistant(conn, &original)?;
        assert_eq!(get_assistant(conn, "asst_a")?, Some(original.clone()));
        assert_eq!(get_assistant(conn, "asst_missing")?, None);

        let mut changed = original;
        changed.name = "renamed".into();
        assert!(update_assistant(conn, &changed)?);
        assert_eq!(
            get_assistant(conn, "asst_a")?.map(|a| a.name),
            Some("renamed".into())
        );

        assert!(delete_assistant(conn, "asst_a")?);
        assert!(!delete_assistant(conn, "asst_a")?);
        assert_eq!(get_assistant(conn, "asst_a")?, None);
        Ok(())
    })
}

#[test]
fn assistants_list_newest_first_with_pages() -> Result<(), StoreError> {
    store().with(|conn| {
        for index in 0..5 {
            insert_assistant(conn, &assistant(&format!("asst_{index}")))?;
        }
        let (first, total) = list_assistants(conn, 2, 0)?;
        assert_eq!(total, 5);
        let ids: Vec<_> = first.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["asst_4", "asst_3"]);
        let (last, _) = list_assistants(conn, 2, 4)?;
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].id, "asst_0");
        let (beyond, total) = list_assistants(conn, 2, 50)?;
        assert!(beyond.is_empty());
        assert_eq!(total, 5);
        Ok(())
    })
}

#[test]
fn threads_filter_on_metadata_assistant() -> Result<(), StoreError> {
    store().with(|conn| {
        insert_thread(conn, &thread("thread_1", Some("asst_a")))?;
        insert_thread(conn, &thread("thread_2", None))?;
        insert_thread(conn, &thread("thread_3", Some("asst_a")))?;
        insert_thread(conn, &thread("thread_4", Some("asst_b")))?;

        let (all, total) = list_threads(conn, 10, 0, None)?;
        assert_eq!(total, 4);
        assert_eq!(all[0].id, "thread_4");

        let (tagged, total) = list_threads(conn, 10, 0, Some("asst_a"))?;
        assert_eq!(total, 2);
        let ids: Vec<_> = tagged.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["thread_3", "thread_1"]);
        assert_eq!(
            get_thread(conn, "thread_1")?,
            Some(thread("thread_1", Some("asst_a")))
        );
        Ok(())
    })
}

#[test]
fn messages_keep_insertion_order_within_a_second() -> Result<(), StoreError> {
    store().with(|conn| {
        insert_thread(conn, &thread("thread_1", None))?;
        // Ids sort the other way round from insertion, so only `seq` can order them.
        for id in ["msg_z", "msg_m", "msg_a"] {
            insert_message(conn, &message(id, "thread_1", Role::User))?;
        }
        let (page, total) = list_messages(conn, "thread_1", 10, 0)?;
        assert_eq!(total, 3);
        let ids: Vec<_> = page.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["msg_z", "msg_m", "msg_a"]);
        let (second, _) = list_messages(conn, "thread_1", 1, 1)?;
        assert_eq!(second[0].id, "msg_m");
        Ok(())
    })
}

#[test]
fn tool_calls_survive_and_can_be_found() -> Result<(), StoreError> {
    store().with(|conn| {
        insert_thread(conn, &thread("thread_1", None))?;
        let mut reply = message("msg_r", "thread_1", Role::Assistant);
        reply.status = MessageStatus::RequiresAction;
        reply.assistant_id = Some("asst_a".into());
        reply.tool_calls = vec![ToolCallRecord {
            id: "call_1".into(),
            name: "lookup_user".into(),
            arguments: json!({"user_id": "u1"}),
            status: ToolCallStatus::RequiresAction,
            output: None,
        }];
        insert_message(conn, &reply)?;
        assert_eq!(get_message(conn, "msg_r")?, Some(reply.clone()));

        let found = find_tool_call_message(conn, "thread_1", "call_1")?;
        assert_eq!(found.map(|m| m.id), Some("msg_r".into()));
        assert_eq!(find_tool_call_message(conn, "thread_1", "call_2")?, None);
        assert_eq!(
            find_tool_call_message(conn, "thread_other", "call_1")?,
            None
        );

        reply.tool_calls[0].output = Some("done".into());
        reply.tool_calls[0].status = ToolCallStatus::Completed;
        reply.content = "after".into();
        save_message(conn, &reply)?;
        assert_eq!(thread_messages(conn, "thread_1")?, vec![reply]);
        Ok(())
    })
}

#[test]
fn deleting_thread_removes_its_messages() -> Result<(), StoreError> {
    store().with(|conn| {
        insert_thread(conn, &thread("thread_1", None))?;
        insert_message(conn, &message("msg_1", "thread_1", Role::User))?;
        assert!(delete_thread(conn, "thread_1")?);
        assert_eq!(get_message(conn, "msg_1")?, None);
        assert!(!delete_thread(conn, "thread_1")?);
        Ok(())
    })
}

#[test]
fn file_reopens_with_data_and_schema_version() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().map_err(|err| StoreError::Task(err.to_string()))?;
    let path = dir.path().join("nested").join("assisters.db");
    Store::open(&path)?.with(|conn| insert_assistant(conn, &assistant("asst_kept")))?;
    let reopened = Store::open(&path)?;
    reopened.with(|conn| {
        assert!(get_assistant(conn, "asst_kept")?.is_some());
        let version: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        assert_eq!(version, current_version());
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        assert_eq!(mode, "wal");
        Ok(())
    })
}

#[test]
fn newer_schema_is_rejected() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().map_err(|err| StoreError::Task(err.to_string()))?;
    let path = dir.path().join("future.db");
    {
        let conn = rusqlite::Connection::open(&path)?;
        conn.pragma_update(None, "user_version", current_version() + 1)?;
    }
    let err = Store::open(&path)
        .err()
        .map(|err| err.to_string())
        .unwrap_or_default();
    assert!(err.contains("newer"), "{err}");
    Ok(())
}
