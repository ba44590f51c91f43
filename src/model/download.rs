//! Downloading a GGUF file over HTTP(S), resuming a partial download with a `Range`
//! request. Bytes go to `NAME.part`, which is renamed to `NAME` only once the whole
//! file is there and its hash matches.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};

use super::progress::byte_bar;
use super::{check_hash, check_model_file};

/// What to download and where.
#[derive(Debug, Clone)]
pub struct DownloadRequest {
    pub url: String,
    /// Expected SHA-256 in hex; when absent the computed one is printed.
    pub sha256: Option<String>,
    /// Directory the file goes into.
    pub dir: PathBuf,
}

/// Downloads the file and returns its final path.
pub async fn download(request: &DownloadRequest) -> Result<PathBuf> {
    let name = file_name(&request.url)?;
    std::fs::create_dir_all(&request.dir)
        .with_context(|| format!("cannot create {}", request.dir.display()))?;
    let dest = request.dir.join(&name);
    let part = request.dir.join(format!("{name}.part"));
    fetch_to_part(&request.url, &part).await?;
    let digest = {
        let part = part.clone();
        tokio::task::spawn_blocking(move || super::sha256_file(&part)).await??
    };
    match &request.sha256 {
        Some(expected) => {
            if let Err(err) = check_hash(&part, &digest, expected) {
                let _ = std::fs::remove_file(&part);
                return Err(err);
            }
        }
        None => eprintln!("SHA-256 {digest}"),
    }
    check_model_file(&part)?;
    std::fs::rename(&part, &dest)
        .with_context(|| format!("cannot move the download to {}", dest.display()))?;
    eprintln!("Model stored at {}", dest.display());
    Ok(dest)
}

/// Picks the file name from the URL's last path segment.
fn file_name(url: &str) -> Result<String> {
    let parsed = reqwest::Url::parse(url)
        .with_context(|| format!("--url {url:?} is not a URL; give an http(s):// link"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("--url {url:?} must start with http:// or https://");
    }
    let name = parsed
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .filter(|name| !name.is_empty() && !name.starts_with('.'))
        .unwrap_or("model.gguf");
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(if name.ends_with(".gguf") {
        name
    } else {
        format!("{name}.gguf")
    })
}

/// Appends the missing bytes of the file to `part`, resuming where it stops.
async fn fetch_to_part(url: &str, part: &Path) -> Result<()> {
    let have = std::fs::metadata(part).map(|meta| meta.len()).unwrap_or(0);
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()?;
    let mut builder = client.get(url);
    if have > 0 {
        builder = builder.header(RANGE, format!("bytes={have}-"));
    }
    let response = builder
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let (start, total) = match status {
        StatusCode::PARTIAL_CONTENT => (have, content_range_total(&response)),
        StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => return Ok(()),
        status if status.is_success() => (0, response.content_length()),
        status => bail!("{url} answered {status}; check the link"),
    };
    if start > 0 {
        eprintln!("Resuming at byte {start}");
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(start > 0)
        .truncate(start == 0)
        .open(part)
        .with_context(|| format!("cannot write {}", part.display()))?;
    let bar = byte_bar("Downloading", total);
    bar.set_position(start);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.with_context(|| {
            format!("the download from {url} broke off; run the same command again to resume")
        })?;
        file.write_all(&chunk)?;
        bar.inc(chunk.len() as u64);
    }
    file.sync_all()?;
    bar.finish_and_clear();
    if let Some(total) = total {
        let got = std::fs::metadata(part)?.len();
        if got != total {
            bail!(
                "the download stopped at {got} of {total} bytes; run the same command again to resume"
            );
        }
    }
    Ok(())
}

/// Reads the total size from `Content-Range: bytes A-B/TOTAL`.
fn content_range_total(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    value.rsplit('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_comes_from_the_url() {
        let name = file_name("https://example.test/a/b/Model.Q8_0.gguf?download=true").ok();
        assert_eq!(name.as_deref(), Some("Model.Q8_0.gguf"));
        assert_eq!(
            file_name("http://h.test/").ok().as_deref(),
            Some("model.gguf")
        );
        assert_eq!(
            // The URL keeps the space percent-encoded, and `%` is not kept in names.
            file_name("http://h.test/x y").ok().as_deref(),
            Some("x_20y.gguf")
        );
        assert!(file_name("ftp://h.test/m.gguf").is_err());
        assert!(file_name("not a url").is_err());
    }
}
