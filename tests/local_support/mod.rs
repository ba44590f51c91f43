//! Runs the built `assisters` binary in local mode with HOME and the XDG directories
//! isolated in a temporary directory and no `ASSISTERS_*` variables set.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use assisters::config::Paths;

/// Maximum time one run of the binary may take: loading the model and a short
/// reply take a few seconds on two cores.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// An isolated home directory.
pub struct Home {
    pub dir: tempfile::TempDir,
}

#[path = "../common/run.rs"]
mod run;
pub use run::Run;

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("temp home"),
        }
    }

    /// Returns the data directory of the binary (`$XDG_DATA_HOME/assisters`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data").join("assisters")
    }

    /// Returns the path of the binary's log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir
            .path()
            .join("state")
            .join("assisters")
            .join("assisters.log")
    }

    /// Returns where the binary looks for the default model in this home.
    pub fn model_path(&self) -> PathBuf {
        self.data_dir()
            .join("models")
            .join(assisters::model::DEFAULT_MODEL_FILE)
    }

    /// Links the already fetched default model from the real data directory into
    /// this home. Returns false, printing why, when it is not there.
    pub fn link_default_model(&self) -> bool {
        let Some(real) = real_default_model() else {
            return false;
        };
        let target = self.model_path();
        std::fs::create_dir_all(target.parent().expect("models dir")).expect("models dir");
        std::os::unix::fs::symlink(&real, &target).expect("symlink the model");
        true
    }

    /// Writes a file that starts like a GGUF file but holds no model, so the server
    /// starts and the model fails to load in the background.
    pub fn fake_gguf(&self) -> PathBuf {
        let path = self.dir.path().join("fake.gguf");
        std::fs::write(&path, b"GGUF\x03\x00\x00\x00 not a model").expect("write fake model");
        path
    }

    /// Applies the isolated environment to a command: only PATH is inherited.
    pub fn isolate(&self, command: &mut Command) {
        let home = self.dir.path();
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_CACHE_HOME", home.join("cache"));
    }

    /// Runs the binary with stdin closed (not a terminal), bounded by [`RUN_TIMEOUT`].
    pub fn run(&self, args: &[&str]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_assisters"));
        self.isolate(&mut command);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command.spawn().expect("binary starts");
        wait_bounded(child)
    }
}

/// Waits for the child, killing it after [`RUN_TIMEOUT`].
fn wait_bounded(child: std::process::Child) -> Run {
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(RUN_TIMEOUT) {
        Ok(output) => {
            let output = output.expect("binary output");
            Run {
                code: output.status.code(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
        }
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("the binary (pid {pid}) did not finish within {RUN_TIMEOUT:?}");
        }
    }
}

/// Returns the default model in the real data directory, or `None`, printing why
/// the caller's test is skipped.
pub fn real_default_model() -> Option<PathBuf> {
    let Some(paths) = Paths::discover() else {
        eprintln!("skipped: no home directory, so no fetched default model");
        return None;
    };
    let path = assisters::model::default_model_path(&paths);
    let size = std::fs::metadata(&path).map(|meta| meta.len()).ok();
    if size != Some(assisters::model::DEFAULT_MODEL_SIZE) {
        eprintln!(
            "skipped: the default model is not at {}; run `assisters model fetch` first",
            path.display()
        );
        return None;
    }
    Some(path)
}

/// Returns every run of 64 or more hex digits in `text`: the shape of the random key
/// of local mode.
pub fn hex_secrets(text: &str) -> Vec<String> {
    let pattern = regex::Regex::new(r"[0-9a-fA-F]{64,}").expect("valid pattern");
    pattern
        .find_iter(text)
        .map(|found| found.as_str().to_owned())
        .collect()
}

/// Reads a file, or returns an empty string when it is absent.
pub fn read_or_empty(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
