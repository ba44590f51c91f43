use std::time::Instant;

use rand::{Rng, SeedableRng};
use ratatui::text::Line;

use crate::api::types::{Message, MessageStatus, Role, ToolCallRecord, ToolCallStatus};

use super::super::theme::Styles;
use super::{ActiveReply, FoldKey, Folds, layout_message};

const REPLY: &str = "## Steps\n\nA paragraph long enough to wrap at forty columns, with **bold** and `code` and 你好世界 in it.\n\n- first item that is also long enough to wrap around\n- second\n\n  continued second\n\n1. one\n\n2. two\n\n```rust\nfn main() {\n\n    println!(\"a line of code that is longer than forty columns\");\n}\n```\nAfter the fence.\n\n| col | other column |\n|---|---|\n| a | b |\n| longer cell here | c |\n\n> a quote that wraps across more than one line at forty columns\n\nThe end.\n";

/// One paragraph of many source lines joined by soft breaks, which stays open until
/// the reply ends, with styles that start and end across lines.
const LONG_PARAGRAPH: &str = "Words of a paragraph that keeps going\nacross source lines, with *emphasis that\nspans a break* and `code` and 你好 wide\ncharacters, then **bold text\nthat closes later** and averyveryveryverylongwordthatmustbreak\nand more words  with two spaces\nuntil the end.";

fn reply_message(content: &str) -> Message {
    Message {
        id: "msg_1".into(),
        thread_id: "thread_1".into(),
        role: Role::Assistant,
        content: content.to_owned(),
        created_at: String::new(),
        assistant_id: None,
        attachments: Vec::new(),
        tool_calls: Vec::new(),
        status: MessageStatus::Completed,
    }
}

/// The lines of the active reply, without its header.
fn streamed(active: &ActiveReply, width: u16, styles: &Styles) -> Vec<Line<'static>> {
    let lines = active.item_lines(width, &Folds::default(), styles);
    lines.iter().skip(1).cloned().collect()
}

/// The lines of the same text laid out whole as a finished message, without its header.
fn whole(content: &str, width: u16, styles: &Styles) -> Vec<Line<'static>> {
    let (lines, _) = layout_message(
        &reply_message(content),
        None,
        width,
        &FoldKey::default(),
        styles,
    );
    lines.into_iter().skip(1).collect()
}

#[test]
fn incremental_layout_equals_full_layout() {
    let styles = Styles::default();
    // Streamed code is highlighted only once its syntax has been used.
    crate::tui::text::highlight_code("fn main() {}", "rust", &styles.code_theme);
    for (seed, text) in (0..25)
        .map(|seed| (seed, REPLY))
        .chain((0..25).map(|seed| (seed, LONG_PARAGRAPH)))
    {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut active = ActiveReply::new(Instant::now());
        let mut end = 0;
        while end < text.len() {
            end = (end + rng.random_range(1..=16)).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            active.content = text[..end].to_owned();
            // Sometimes the pane is resized while the reply streams.
            let width = if rng.random_range(0..10) == 0 { 57 } else { 40 };
            assert_eq!(
                streamed(&active, width, &styles),
                whole(&active.content, width, &styles),
                "seed {seed}, {end} bytes, width {width}"
            );
        }
    }
}

#[test]
fn replaced_content_is_laid_out_again() {
    let styles = Styles::default();
    let mut active = ActiveReply::new(Instant::now());
    active.content = "first\n\nsecond\n\nthird".into();
    assert_eq!(
        streamed(&active, 40, &styles),
        whole(&active.content, 40, &styles)
    );
    active.content = "other text\n\nentirely".into();
    assert_eq!(
        streamed(&active, 40, &styles),
        whole(&active.content, 40, &styles)
    );
}

#[test]
fn tool_blocks_fold_one_at_a_time() {
    let styles = Styles::default();
    let mut message = reply_message("text");
    for id in ["call_1", "call_2"] {
        message.tool_calls.push(ToolCallRecord {
            id: id.into(),
            name: "weather".into(),
            arguments: serde_json::json!({}),
            status: ToolCallStatus::Completed,
            output: Some("one\ntwo".into()),
        });
    }
    let mut folds = Folds::default();
    folds.toggle("call_2");
    folds.selected = Some("call_2".into());
    let (lines, starts) =
        layout_message(&message, None, 80, &folds.key(&message.tool_calls), &styles);
    let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
    assert_eq!(starts, vec![2, 3]);
    assert!(text[2].ends_with('▸'), "{text:?}");
    assert!(text[3].starts_with("» ⚙ weather"), "{text:?}");
    assert!(text[3].ends_with('▾'), "{text:?}");
    assert_eq!(text[4], "  ↳ one");
    assert_eq!(text[5], "    two");
}

#[test]
fn attachments_show_under_message() {
    let styles = Styles::default();
    let mut message = reply_message("see the plan");
    message.role = Role::User;
    message.attachments = vec![crate::api::types::Attachment {
        kind: "file".into(),
        file_id: "file_plan\u{1b}[2J".into(),
    }];
    let (lines, _) = layout_message(&message, None, 40, &FoldKey::default(), &styles);
    let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
    assert_eq!(text[1], "see the plan");
    assert!(text[2].starts_with("attached file_plan"), "{text:?}");
    assert!(!text[2].contains('\u{1b}'), "{text:?}");
}
