//! Runs the built `assisters` binary against a real in-process server, with HOME and
//! the XDG directories isolated in a temporary directory.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use assisters::server::{RunningServer, ServerConfig};
use tokio::io::AsyncWriteExt;

pub const KEY: &str = "cli-test-key-7f3e";

/// A server and an isolated home for the binary.
pub struct Env {
    pub server: RunningServer,
    pub base_url: String,
    pub home: tempfile::TempDir,
}

#[path = "../common/run.rs"]
mod run;
pub use run::Run;

pub async fn start() -> Env {
    start_with(|_| {}).await
}

pub async fn start_with(change: impl FnOnce(&mut ServerConfig)) -> Env {
    let home = tempfile::tempdir().expect("temp home");
    let mut config = ServerConfig::new(home.path().join("server.db"), KEY);
    change(&mut config);
    let server = assisters::server::spawn(config)
        .await
        .expect("server starts");
    Env {
        base_url: server.base_url(),
        server,
        home,
    }
}

impl Env {
    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join("config").join("assisters")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.home.path().join("state").join("assisters")
    }

    /// Writes `config.toml` in the isolated config directory.
    pub fn write_config(&self, text: &str) -> PathBuf {
        std::fs::create_dir_all(self.config_dir()).expect("config dir");
        let path = self.config_dir().join("config.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// Runs the binary with the server's URL and key in the environment.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with(
            args,
            &[
                ("ASSISTERS_BASE_URL", &self.base_url),
                ("ASSISTERS_API_KEY", KEY),
            ],
            None,
        )
        .await
    }

    /// Runs the binary with exactly these ASSISTERS_* variables and optional stdin.
    pub async fn run_with(&self, args: &[&str], vars: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut child = self.command(args, vars).spawn().expect("binary starts");
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(stdin.unwrap_or_default().as_bytes())
                .await
                .expect("stdin");
        }
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("binary ends in time")
            .expect("binary output");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).to_string(),
        }
    }

    /// Builds the command with an isolated environment; stdio is piped.
    pub fn command(&self, args: &[&str], vars: &[(&str, &str)]) -> tokio::process::Command {
        let home = self.home.path();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_assisters"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in vars {
            command.env(name, value);
        }
        command
    }
}

/// Writes a function tool definition into `dir` and returns the `@FILE` argument.
pub fn function_file(dir: &Path, name: &str) -> String {
    let path = dir.join(format!("{name}.json"));
    let tool = serde_json::json!({
        "type": "function",
        "name": name,
        "description": "Finds a user by id",
        "parameters": {"type": "object", "properties": {"user_id": {"type": "string"}}},
    });
    std::fs::write(&path, tool.to_string()).expect("write tool file");
    format!("@{}", path.display())
}
