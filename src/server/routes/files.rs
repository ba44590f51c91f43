//! `/v1/files`: upload (multipart), list, show and delete files.
//!
//! An upload is read field by field with its own size limit (`--max-upload`), not
//! the JSON body limit. Its text is extracted and split into passages, and the file
//! row and its passages are written in one transaction, so a failed upload leaves
//! nothing behind.

use axum::Json;
use axum::extract::multipart::Field;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use futures::StreamExt;

use crate::api::types::{Deleted, FILE_PREFIX, FILE_PURPOSES, File, Page};
use crate::server::body::{self, PageRequest};
use crate::server::error::{ApiFailure, ApiResult, INVALID_REQUEST, VALIDATION};
use crate::server::ids::{new_id, now_rfc3339};
use crate::server::state::AppState;
use crate::server::store;
use crate::server::tools::documents::{self, DocumentError};

/// Room for the multipart framing and the `purpose` field around the file.
const FRAMING: usize = 64 * 1024;
/// Bytes read and dropped past the limit, so the client gets to read the 413.
const DRAIN_AFTER_LIMIT: usize = 16 * 1024 * 1024;
/// Longest file name kept, in characters.
const MAX_FILENAME: usize = 255;

/// The fields of an upload once read.
struct Upload {
    filename: String,
    declared_type: Option<String>,
    bytes: Vec<u8>,
    purpose: String,
}

pub async fn create(
    State(state): State<AppState>,
    request: Request,
) -> ApiResult<(StatusCode, Json<File>)> {
    let limit = state.max_upload;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > (limit + FRAMING) as u64) {
        drain(request).await;
        return Err(upload_too_large(limit));
    }
    let multipart = Multipart::from_request(request, &state)
        .await
        .map_err(|err| {
            ApiFailure::malformed(format!(
                "the body must be multipart/form-data with a `file` and a `purpose` field \
                 ({err})"
            ))
        })?;
    let upload = read_upload(multipart, limit).await?;
    let file = store_upload(&state, upload).await?;
    tracing::info!(file_id = %file.id, bytes = file.bytes, passages = file.passages, "file uploaded");
    Ok((StatusCode::CREATED, Json(file)))
}

fn upload_too_large(limit: usize) -> ApiFailure {
    ApiFailure::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "file_too_large",
        INVALID_REQUEST,
        format!("the file is larger than the upload limit of {limit} bytes"),
        Some("file"),
    )
}

fn bad_multipart(err: impl std::fmt::Display) -> ApiFailure {
    ApiFailure::malformed(format!("cannot read the multipart body: {err}"))
}

async fn drain(request: Request) {
    let mut stream = request.into_body().into_data_stream();
    let mut drained = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        drained += chunk.len();
        if drained > DRAIN_AFTER_LIMIT {
            break;
        }
    }
}

async fn read_upload(mut multipart: Multipart, limit: usize) -> ApiResult<Upload> {
    let mut file: Option<(String, Option<String>, Vec<u8>)> = None;
    let mut purpose = None;
    while let Some(field) = multipart.next_field().await.map_err(bad_multipart)? {
        let name = field.name().unwrap_or_default().to_owned();
        if (name == "file" && file.is_some()) || (name == "purpose" && purpose.is_some()) {
            drop(field);
            drain_multipart(multipart).await;
            return Err(ApiFailure::invalid(
                &name,
                format!("{name} is given more than once; upload one file per request"),
            ));
        }
        match name.as_str() {
            "file" => {
                let filename = clean_filename(field.file_name().unwrap_or("upload"));
                let declared_type = field.content_type().map(str::to_owned);
                let Some(bytes) = read_field(field, limit).await? else {
                    drain_multipart(multipart).await;
                    return Err(upload_too_large(limit));
                };
                file = Some((filename, declared_type, bytes));
            }
            "purpose" => purpose = Some(field.text().await.map_err(bad_multipart)?),
            other => {
                return Err(ApiFailure::invalid(
                    other,
                    format!("unknown form field {other:?}; expected `file` and `purpose`"),
                ));
            }
        }
    }
    let Some((filename, declared_type, bytes)) = file else {
        return Err(ApiFailure::invalid(
            "file",
            "file is required: the document to upload",
        ));
    };
    let purpose = purpose.map(|p| p.trim().to_owned()).unwrap_or_default();
    if !FILE_PURPOSES.contains(&purpose.as_str()) {
        return Err(ApiFailure::invalid(
            "purpose",
            format!(
                "purpose must be one of {}, got {purpose:?}",
                FILE_PURPOSES.join(", ")
            ),
        ));
    }
    Ok(Upload {
        filename,
        declared_type,
        bytes,
        purpose,
    })
}

/// Reads a field; `None` when it is longer than `limit`.
async fn read_field(mut field: Field<'_>, limit: usize) -> ApiResult<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
        if bytes.len() + chunk.len() > limit {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

async fn drain_multipart(mut multipart: Multipart) {
    let mut drained = 0usize;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            drained += chunk.len();
            if drained > DRAIN_AFTER_LIMIT {
                return;
            }
        }
    }
}

/// Keeps the last path component, without control characters, at most 255 long.
/// A longer name is cut before its extension, which sets the document type.
fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: Vec<char> = base.chars().filter(|c| !c.is_control()).collect();
    if clean.iter().all(|c| c.is_whitespace()) {
        return "upload".to_owned();
    }
    if clean.len() <= MAX_FILENAME {
        return clean.into_iter().collect();
    }
    // A "." followed by more than 15 characters starts no extension worth keeping.
    let extension = match clean.iter().rposition(|c| *c == '.') {
        Some(dot) if clean.len() - dot <= 16 => &clean[dot..],
        _ => &[],
    };
    let stem = &clean[..MAX_FILENAME - extension.len()];
    stem.iter().chain(extension).collect()
}

/// Checks that every id names a file: a 404 naming the first unknown one, with
/// `param` such as `file_ids` or `attachments` and the index.
pub fn check_files_exist(
    conn: &rusqlite::Connection,
    ids: &[String],
    param: &str,
    suffix: &str,
) -> Result<Result<(), ApiFailure>, store::StoreError> {
    Ok(match store::first_missing_file(conn, ids)? {
        Some(index) => Err(ApiFailure::not_found(
            "file",
            &ids[index],
            Some(&format!("{param}[{index}]{suffix}")),
        )),
        None => Ok(()),
    })
}

fn document_failure(err: DocumentError) -> ApiFailure {
    ApiFailure::new(
        StatusCode::BAD_REQUEST,
        INVALID_REQUEST,
        VALIDATION,
        err.to_string(),
        Some("file"),
    )
}

async fn store_upload(state: &AppState, upload: Upload) -> ApiResult<File> {
    let Upload {
        filename,
        declared_type,
        bytes,
        purpose,
    } = upload;
    let kind =
        documents::detect(&filename, declared_type.as_deref(), &bytes).map_err(document_failure)?;
    let size = bytes.len() as u64;
    let extracted = tokio::task::spawn_blocking(move || {
        documents::extract(kind, &bytes).map(|text| documents::passages(&text))
    })
    .await;
    let passages = match extracted {
        Ok(result) => result.map_err(document_failure)?,
        Err(err) => {
            tracing::warn!(error = %err, "text extraction panicked");
            return Err(document_failure(DocumentError::BrokenPdf(
                "the parser failed on it".to_owned(),
            )));
        }
    };
    let file = File {
        id: new_id(FILE_PREFIX),
        object: "file".to_owned(),
        filename,
        purpose,
        content_type: kind.content_type().to_owned(),
        bytes: size,
        passages: passages.len() as u64,
        created_at: now_rfc3339(),
    };
    let saved = file.clone();
    state
        .db
        .call(move |conn| store::insert_file(conn, &saved, &passages))
        .await?;
    Ok(file)
}

pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<body::Query>,
) -> ApiResult<Json<Page<File>>> {
    let page = PageRequest::from_query(&query)?;
    let (data, total) = state
        .db
        .call(move |conn| store::list_files(conn, page.limit, page.offset))
        .await?;
    Ok(Json(page.page(data, total)))
}

pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<File>> {
    let lookup = id.clone();
    state
        .db
        .call(move |conn| store::get_file(conn, &lookup))
        .await?
        .map(Json)
        .ok_or_else(|| ApiFailure::not_found("file", &id, None))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Deleted>> {
    let lookup = id.clone();
    let deleted = state
        .db
        .call(move |conn| store::delete_file(conn, &lookup))
        .await?;
    if !deleted {
        return Err(ApiFailure::not_found("file", &id, None));
    }
    tracing::info!(file_id = %id, "file deleted");
    Ok(Json(Deleted { id, deleted: true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\docs\\notes.md"), "notes.md");
        assert_eq!(clean_filename("a\u{1b}[31mb.txt"), "a[31mb.txt");
        assert_eq!(clean_filename(""), "upload");
    }

    #[test]
    fn long_file_names_keep_their_extension() {
        let name = format!("{}.md", "a".repeat(300));
        let clean = clean_filename(&name);
        assert_eq!(clean.chars().count(), MAX_FILENAME);
        assert!(clean.ends_with("aaa.md"), "{clean}");
        let dotted = format!("notes.{}", "x".repeat(300));
        assert_eq!(clean_filename(&dotted).chars().count(), MAX_FILENAME);
    }
}
