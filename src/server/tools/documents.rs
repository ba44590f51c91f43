//! Uploaded documents: recognising their type, extracting their text and splitting
//! it into passages for the search index.
//!
//! Plain text and Markdown must be UTF-8. PDF text is extracted page by page with
//! `lopdf`; a PDF that cannot be parsed, or that contains no text (a scan), is rejected.

/// A document type the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    Text,
    Markdown,
    Pdf,
}

impl DocumentKind {
    /// The MIME type recorded on the file.
    pub fn content_type(self) -> &'static str {
        match self {
            DocumentKind::Text => "text/plain",
            DocumentKind::Markdown => "text/markdown",
            DocumentKind::Pdf => "application/pdf",
        }
    }
}

/// Why an upload cannot be indexed. Each message names the problem and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("unsupported file type {0}; upload plain text (.txt), Markdown (.md) or PDF (.pdf)")]
    Unsupported(String),
    #[error("the file is empty; upload a file with some text in it")]
    Empty,
    #[error("the file is not valid UTF-8 text; save it as UTF-8 or upload a PDF")]
    NotUtf8,
    #[error("the PDF cannot be read ({0}); check that the file is a complete PDF")]
    BrokenPdf(String),
    #[error("the PDF contains no extractable text (it may be a scan); upload a text version")]
    NoText,
}

/// Largest passage, in characters; paragraphs are packed up to this size.
const PASSAGE_CHARS: usize = 800;

/// Recognises the type from the file name and the declared content type; PDF
/// content is recognised by its magic bytes whatever the name is.
pub fn detect(
    filename: &str,
    declared: Option<&str>,
    bytes: &[u8],
) -> Result<DocumentKind, DocumentError> {
    if bytes.starts_with(b"%PDF-") {
        return Ok(DocumentKind::Pdf);
    }
    let extension = filename
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let declared = declared
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|value| !value.is_empty() && value != "application/octet-stream");
    match extension.as_str() {
        "txt" | "text" | "log" | "csv" => return Ok(DocumentKind::Text),
        "md" | "markdown" => return Ok(DocumentKind::Markdown),
        "pdf" => return Ok(DocumentKind::Pdf),
        _ => {}
    }
    match declared.as_deref() {
        Some("text/plain") => Ok(DocumentKind::Text),
        Some("text/markdown" | "text/x-markdown") => Ok(DocumentKind::Markdown),
        Some("application/pdf") => Ok(DocumentKind::Pdf),
        Some(other) => Err(DocumentError::Unsupported(format!(
            "{other:?} ({filename})"
        ))),
        None if extension.is_empty() => Err(DocumentError::Unsupported(format!(
            "of {filename:?} (no extension and no content type)"
        ))),
        None => Err(DocumentError::Unsupported(format!(
            ".{extension} ({filename})"
        ))),
    }
}

/// Extracts the text of a document.
pub fn extract(kind: DocumentKind, bytes: &[u8]) -> Result<String, DocumentError> {
    if bytes.is_empty() {
        return Err(DocumentError::Empty);
    }
    let text = match kind {
        DocumentKind::Text | DocumentKind::Markdown => std::str::from_utf8(bytes)
            .map_err(|_| DocumentError::NotUtf8)?
            .trim_start_matches('\u{feff}')
            .to_owned(),
        DocumentKind::Pdf => pdf_text(bytes)?,
    };
    if text.trim().is_empty() {
        return Err(match kind {
            DocumentKind::Pdf => DocumentError::NoText,
            _ => DocumentError::Empty,
        });
    }
    Ok(text)
}

fn pdf_text(bytes: &[u8]) -> Result<String, DocumentError> {
    let document = lopdf::Document::load_mem(bytes)
        .map_err(|err| DocumentError::BrokenPdf(err.to_string()))?;
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    if pages.is_empty() {
        return Err(DocumentError::BrokenPdf("it has no pages".to_owned()));
    }
    let mut text = String::new();
    for page in pages {
        match document.extract_text(&[page]) {
            Ok(page_text) => {
                text.push_str(&page_text);
                text.push_str("\n\n");
            }
            Err(err) => tracing::warn!(page, error = %err, "cannot extract the text of a PDF page"),
        }
    }
    Ok(text)
}

/// Splits text into passages of at most about [`PASSAGE_CHARS`] characters, packing
/// whole paragraphs (blank-line separated) and cutting longer ones at word breaks.
pub fn passages(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        for piece in cut(paragraph, PASSAGE_CHARS) {
            let needed = current.chars().count() + piece.chars().count() + 2;
            if !current.is_empty() && needed > PASSAGE_CHARS {
                out.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push_str("\n\n");
            }
            current.push_str(piece);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Cuts `text` into pieces of at most `max` characters, at whitespace when possible.
fn cut(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        let limit = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let end = rest[..limit]
            .rfind(char::is_whitespace)
            .filter(|&i| i > 0)
            .unwrap_or(limit);
        pieces.push(rest[..end].trim_end());
        rest = rest[end..].trim_start();
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_name_type_and_magic() {
        assert_eq!(detect("a.md", None, b"# x"), Ok(DocumentKind::Markdown));
        assert_eq!(detect("a.TXT", None, b"x"), Ok(DocumentKind::Text));
        assert_eq!(
            detect("blob", Some("text/plain; charset=utf-8"), b"x"),
            Ok(DocumentKind::Text)
        );
        assert_eq!(
            detect("report.bin", None, b"%PDF-1.4"),
            Ok(DocumentKind::Pdf)
        );
        let err = detect("photo.png", Some("image/png"), b"\x89PNG").err();
        assert!(
            err.map(|e| e.to_string())
                .unwrap_or_default()
                .contains(".png")
        );
        let err = detect("run.exe", None, b"MZ").err();
        assert!(
            err.map(|e| e.to_string())
                .unwrap_or_default()
                .contains(".exe")
        );
    }

    #[test]
    fn empty_and_non_utf8_text_are_rejected() {
        assert_eq!(extract(DocumentKind::Text, b""), Err(DocumentError::Empty));
        assert_eq!(
            extract(DocumentKind::Text, b"  \n"),
            Err(DocumentError::Empty)
        );
        assert_eq!(
            extract(DocumentKind::Text, b"\xff\xfe"),
            Err(DocumentError::NotUtf8)
        );
        assert!(matches!(
            extract(DocumentKind::Pdf, b"%PDF-1.4 broken"),
            Err(DocumentError::BrokenPdf(_))
        ));
    }

    #[test]
    fn passages_pack_paragraphs_and_cut_long_ones() {
        let text = format!("short one\n\nshort two\n\n{}", "word ".repeat(400));
        let parts = passages(&text);
        assert!(parts[0].starts_with("short one\n\nshort two"), "{parts:?}");
        assert!(
            parts.iter().all(|p| p.chars().count() <= PASSAGE_CHARS),
            "{parts:?}"
        );
        let joined: usize = parts.iter().map(|p| p.matches("word").count()).sum();
        assert_eq!(joined, 400);
    }
}
