//! Reading request bodies and query strings into checked values.
//!
//! Bodies are read by hand rather than through axum's `Json`, so every failure
//! (size, syntax, wrong type, unknown field) becomes an [`ApiFailure`] that names the
//! field. A `null` field counts as absent.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use futures::StreamExt;
use serde_json::{Map, Value};

use crate::api::types::Page;

use super::error::ApiFailure;
use super::state::AppState;

/// Extra bytes read and thrown away after the limit is passed, so that the client
/// finishes sending and reads the 413 instead of seeing a reset connection.
const DRAIN_AFTER_LIMIT: usize = 16 * 1024 * 1024;

/// A JSON object body. An empty body is an empty object.
#[derive(Debug, Default)]
pub struct JsonBody(pub Fields);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.max_body;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        let bytes = read_limited(req.into_body(), limit, declared).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Fields::default()));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|err| ApiFailure::malformed(format!("the body is not valid JSON: {err}")))?;
        match value {
            Value::Object(map) => Ok(JsonBody(Fields { map })),
            other => Err(ApiFailure::malformed(format!(
                "the body must be a JSON object, not {}",
                json_type(&other)
            ))),
        }
    }
}

async fn read_limited(
    body: Body,
    limit: usize,
    declared: Option<u64>,
) -> Result<Vec<u8>, ApiFailure> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut over = declared.is_some_and(|length| length > limit as u64);
    let mut drained = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|err| ApiFailure::malformed(format!("cannot read the body: {err}")))?;
        if over {
            drained += chunk.len();
            if drained > DRAIN_AFTER_LIMIT {
                break;
            }
            continue;
        }
        bytes.extend_from_slice(&chunk);
        if bytes.len() > limit {
            over = true;
            drained = bytes.len();
            bytes = Vec::new();
        }
    }
    if over {
        return Err(ApiFailure::too_large(limit));
    }
    Ok(bytes)
}

/// Returns the JSON type name of a value, for messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The fields of a body object, taken out one by one as they are checked.
#[derive(Debug, Default)]
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    pub fn new(map: Map<String, Value>) -> Fields {
        Fields { map }
    }

    /// Rejects the first field not in `allowed`.
    pub fn reject_unknown(&self, allowed: &[&str]) -> Result<(), ApiFailure> {
        match self.map.keys().find(|key| !allowed.contains(&key.as_str())) {
            Some(key) => Err(ApiFailure::invalid(
                key,
                format!(
                    "unknown field {key:?}; expected one of: {}",
                    allowed.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// Removes a field; `null` counts as absent.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|value| !value.is_null())
    }

    /// Removes a string field of at most `max` characters.
    pub fn string(&mut self, key: &str, max: usize) -> Result<Option<String>, ApiFailure> {
        self.take(key)
            .map(|value| checked_string(key, value, max))
            .transpose()
    }

    /// Removes a required string field of 1 to `max` characters.
    pub fn required_string(&mut self, key: &str, max: usize) -> Result<String, ApiFailure> {
        let value = self
            .string(key, max)?
            .ok_or_else(|| ApiFailure::invalid(key, format!("{key} is required")))?;
        if value.trim().is_empty() {
            return Err(ApiFailure::invalid(key, format!("{key} must not be empty")));
        }
        Ok(value)
    }
}

/// Checks that `value` is a string of at most `max` characters; `param` names it.
pub fn checked_string(param: &str, value: Value, max: usize) -> Result<String, ApiFailure> {
    let Value::String(text) = value else {
        return Err(ApiFailure::invalid(
            param,
            format!("{param} must be a string, not {}", json_type(&value)),
        ));
    };
    let length = text.chars().count();
    if length > max {
        return Err(ApiFailure::invalid(
            param,
            format!("{param} is {length} characters long; the maximum is {max}"),
        ));
    }
    Ok(text)
}

/// Query parameters; a repeated name keeps its last value.
pub type Query = HashMap<String, String>;

/// Page size and offset of a list request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub offset: u64,
}

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size.
pub const MAX_LIMIT: u32 = 100;

impl PageRequest {
    /// Reads `limit` (1 to 100, default 20) and `offset` (0 or more, default 0).
    pub fn from_query(query: &Query) -> Result<PageRequest, ApiFailure> {
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or_else(|| {
                    ApiFailure::invalid(
                        "limit",
                        format!("limit must be an integer from 1 to {MAX_LIMIT}, got {text:?}"),
                    )
                })?,
        };
        let offset = match query.get("offset") {
            None => 0,
            Some(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|offset| i64::try_from(*offset).is_ok())
                .ok_or_else(|| {
                    ApiFailure::invalid(
                        "offset",
                        format!("offset must be an integer of 0 or more, got {text:?}"),
                    )
                })?,
        };
        Ok(PageRequest { limit, offset })
    }

    /// Builds the list response for `data`, the rows of this page out of `total`.
    pub fn page<T>(self, data: Vec<T>, total: u64) -> Page<T> {
        let has_more = self.offset.saturating_add(data.len() as u64) < total;
        Page {
            data,
            total,
            has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Query {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn page_has_more_until_the_last_row() {
        let page = PageRequest {
            limit: 2,
            offset: 3,
        };
        assert!(page.page(vec![1, 2], 6).has_more);
        assert!(!page.page(vec![1, 2], 5).has_more);
        assert!(!page.page(Vec::<u8>::new(), 2).has_more);
        assert_eq!(page.page(vec![1], 9).total, 9);
    }

    #[test]
    fn page_defaults_and_bounds() {
        assert_eq!(
            PageRequest::from_query(&query(&[])),
            Ok(PageRequest {
                limit: 20,
                offset: 0
            })
        );
        assert_eq!(
            PageRequest::from_query(&query(&[("limit", "100"), ("offset", "7")])),
            Ok(PageRequest {
                limit: 100,
                offset: 7
            })
        );
        for bad in ["0", "101", "-1", "abc", "1.5", ""] {
            let err = PageRequest::from_query(&query(&[("limit", bad)])).err();
            assert_eq!(
                err.and_then(|e| e.body.param),
                Some("limit".into()),
                "limit={bad}"
            );
        }
        for bad in ["-1", "x", "99999999999999999999"] {
            let err = PageRequest::from_query(&query(&[("offset", bad)])).err();
            assert_eq!(
                err.and_then(|e| e.body.param),
                Some("offset".into()),
                "offset={bad}"
            );
        }
    }

    #[test]
    fn string_checks_type_and_length() {
        let mut fields = Fields::new(
            serde_json::json!({"name": 3, "model": "ééé", "none": null})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let err = fields.string("name", 10).err().map(|e| e.body.message);
        assert_eq!(err, Some("name must be a string, not a number".into()));
        assert!(fields.string("model", 2).is_err());
        assert_eq!(fields.string("none", 2).ok(), Some(None));
        let missing = fields.required_string("instructions", 5).err();
        assert_eq!(
            missing.map(|e| e.body.message),
            Some("instructions is required".into())
        );
    }
}
