//! The `knowledge_base` tool: BM25 search over the passages of the files an
//! assistant and a thread can see.
//!
//! The user's words never reach FTS5 as query syntax: each word becomes a quoted
//! term (`"word"`), joined with `OR`, so operators, quotes and column filters in the
//! text are searched for as plain words and cannot cause a syntax error.

use crate::server::store::{self, Db, PassageHit, StoreError};

/// Passages a search returns.
pub const TOP_PASSAGES: usize = 4;
/// Terms of a query kept; the rest are ignored.
const MAX_TERMS: usize = 32;

/// Common words that match nearly every passage and only add noise.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "in", "is", "it", "me", "my", "of", "on", "or", "please", "tell", "that", "the", "this",
    "to", "was", "what", "when", "where", "which", "who", "why", "with", "you", "your",
];

/// Builds a safe FTS5 query from free text; `None` when it has no searchable word.
pub fn fts_query(text: &str) -> Option<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        let word = word.to_lowercase();
        if word.is_empty() || STOP_WORDS.contains(&word.as_str()) {
            continue;
        }
        let term = format!("\"{}\"", word.replace('"', "\"\""));
        if !terms.contains(&term) {
            terms.push(term);
        }
        if terms.len() == MAX_TERMS {
            break;
        }
    }
    (!terms.is_empty()).then(|| terms.join(" OR "))
}

/// Searches the passages of `file_ids` for `query`.
pub async fn search(
    db: &Db,
    file_ids: Vec<String>,
    query: &str,
) -> Result<Vec<PassageHit>, StoreError> {
    let Some(fts) = fts_query(query) else {
        return Ok(Vec::new());
    };
    db.call(move |conn| store::search_passages(conn, &file_ids, &fts, TOP_PASSAGES))
        .await
}

/// Formats hits as the tool output: each passage with its file name, numbered.
pub fn format_hits(query: &str, hits: &[PassageHit]) -> String {
    if hits.is_empty() {
        return format!("No passage of the attached documents matches {query:?}.");
    }
    let mut out = String::new();
    for (index, hit) in hits.iter().enumerate() {
        if index > 0 {
            out.push_str("\n\n");
        }
        out.push_str(&format!(
            "[{}] {}:\n{}",
            index + 1,
            hit.filename,
            hit.content.trim()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_quote_every_term() {
        assert_eq!(
            fts_query("What is the NEAR(\"vault\" code)* -x OR y:z?").as_deref(),
            Some("\"near\" OR \"vault\" OR \"code\" OR \"x\" OR \"y\" OR \"z\"")
        );
        assert_eq!(fts_query("the of ???"), None);
        assert_eq!(fts_query("héllo héllo").as_deref(), Some("\"héllo\""));
    }

    #[test]
    fn hostile_queries_run_without_errors() {
        let store = crate::server::store::Store::open_in_memory();
        let Ok(store) = store else {
            panic!("cannot open the in-memory store");
        };
        let result = store.with(|conn| {
            for text in [
                "\"",
                "AND OR NOT",
                "a:b*",
                "^(x",
                "x\" OR \"y",
                "NEAR(a b, 3)",
            ] {
                if let Some(query) = fts_query(text) {
                    store::search_passages(conn, &["file_1".into()], &query, 3)?;
                }
            }
            Ok(())
        });
        assert!(result.is_ok(), "{result:?}");
    }
}
