//! `config.toml` and the project's directories.
//!
//! The file is optional. Every section has defaults, unknown keys are rejected so a
//! typo does not silently do nothing, and a parse error names the file, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Environment variable holding the API key.
pub const API_KEY_ENV: &str = "ASSISTERS_API_KEY";
/// Environment variable holding the base URL.
pub const BASE_URL_ENV: &str = "ASSISTERS_BASE_URL";

/// The project's directories, from `directories` (XDG on Linux).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    /// Logs go here.
    pub state_dir: PathBuf,
}

impl Paths {
    /// Returns the platform's directories for this project, or `None` when no home
    /// directory can be found.
    pub fn discover() -> Option<Paths> {
        let dirs = directories::ProjectDirs::from("ai", "assisters", "assisters")?;
        let state_dir = dirs
            .state_dir()
            .unwrap_or_else(|| dirs.cache_dir())
            .to_path_buf();
        Some(Paths {
            config_dir: dirs.config_dir().to_path_buf(),
            data_dir: dirs.data_dir().to_path_buf(),
            state_dir,
        })
    }

    /// Returns directories named `config`, `data` and `state` under `root`.
    #[cfg(test)]
    pub(crate) fn under(root: &std::path::Path) -> Paths {
        Paths {
            config_dir: root.join("config"),
            data_dir: root.join("data"),
            state_dir: root.join("state"),
        }
    }

    /// Returns the default path of `config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }
}

/// Where the API is and how to authenticate: the top level of the file, or one
/// `[profiles.NAME]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub base_url: Option<String>,
    /// The key itself. Prefer `ASSISTERS_API_KEY` or `api_key_command`.
    pub api_key: Option<String>,
    /// A program and its arguments, run without a shell, whose first line of output
    /// is the key.
    pub api_key_command: Option<Vec<String>>,
}

/// Colours of the TUI, as ratatui colour names or `#rrggbb`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Theme {
    /// Border of the focused pane and other highlights.
    pub accent: String,
    pub user: String,
    pub assistant: String,
    pub tool: String,
    pub error: String,
    /// syntect theme for fenced code.
    pub code_theme: String,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            accent: "cyan".to_owned(),
            user: "green".to_owned(),
            assistant: "blue".to_owned(),
            tool: "magenta".to_owned(),
            error: "red".to_owned(),
            code_theme: "base16-ocean.dark".to_owned(),
        }
    }
}

/// When a custom tool may run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// Ask in a dialog before each call.
    #[default]
    Ask,
    /// Run without asking.
    Always,
}

/// How the client runs one custom function tool. Exactly one of `command` and `url`
/// is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolHandler {
    /// A program and its arguments, run without a shell. It gets
    /// `{"tool_call_id", "arguments"}` on stdin and its stdout is the output.
    pub command: Option<Vec<String>>,
    /// An HTTP endpoint that gets the same JSON as a POST and answers
    /// `{"tool_call_id", "output"}`.
    pub url: Option<String>,
    #[serde(default = "default_tool_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "default_tool_output_cap")]
    pub max_output_bytes: usize,
    #[serde(default)]
    pub approval: Approval,
}

fn default_tool_timeout() -> u64 {
    30
}

fn default_tool_output_cap() -> usize {
    64 * 1024
}

/// The whole `config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub base_url: Option<String>,
    /// The key itself. Prefer `ASSISTERS_API_KEY` or `api_key_command`.
    pub api_key: Option<String>,
    /// A program and its arguments, run without a shell, whose first line of output
    /// is the key.
    pub api_key_command: Option<Vec<String>>,
    /// The profile used when `--profile` is not given.
    pub default_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Connection>,
    #[serde(default)]
    pub theme: Theme,
    /// Key overrides: a key such as `"ctrl-n"` mapped to an action name.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    /// Custom function tools by name.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolHandler>,
}

/// A config file that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}, line {line}{key}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        /// `, key NAME` when the error is about one key, otherwise empty.
        key: String,
        message: String,
    },
    #[error("config file {path}: {message}")]
    Semantic { path: PathBuf, message: String },
}

impl Config {
    /// Reads `path`. A missing file is an empty config.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Config::parse(&text, path)
    }

    /// Parses the text of a config file; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|err| {
            let line = err
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(1);
            // The key is read from the start of the line holding the error, because the
            // span may cover only the value.
            let key = err
                .span()
                .and_then(|span| {
                    let before = text.get(..span.start)?;
                    text.get(before.rfind('\n').map_or(0, |newline| newline + 1)..)
                })
                .map(key_at_span)
                .filter(|key| !key.is_empty())
                .map(|key| format!(", key {key}"))
                .unwrap_or_default();
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                key,
                message: err.message().to_owned(),
            }
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let semantic = |message: String| ConfigError::Semantic {
            path: path.to_path_buf(),
            message,
        };
        for (name, handler) in &self.tools {
            match (&handler.command, &handler.url) {
                (Some(_), Some(_)) => {
                    return Err(semantic(format!(
                        "tool {name} sets both command and url; keep one"
                    )));
                }
                (None, None) => {
                    return Err(semantic(format!("tool {name} needs a command or a url")));
                }
                (Some(command), None) if command.is_empty() => {
                    return Err(semantic(format!(
                        "tool {name} has an empty command; give the program and its arguments"
                    )));
                }
                _ => {}
            }
        }
        if let Some(profile) = &self.default_profile
            && !self.profiles.contains_key(profile)
        {
            return Err(semantic(format!(
                "default_profile {profile:?} is not defined; add a [profiles.{profile}] table"
            )));
        }
        Ok(())
    }

    /// Returns the connection settings of `profile` (or of the default profile),
    /// falling back to the top-level settings for unset fields.
    pub fn connection(&self, profile: Option<&str>) -> Result<Connection, String> {
        let top = Connection {
            base_url: self.base_url.clone(),
            api_key: self.api_key.clone(),
            api_key_command: self.api_key_command.clone(),
        };
        let name = profile.or(self.default_profile.as_deref());
        let Some(name) = name else {
            return Ok(top);
        };
        let Some(chosen) = self.profiles.get(name) else {
            let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
            return Err(format!(
                "profile {name:?} is not defined in the config file (defined: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        };
        Ok(Connection {
            base_url: chosen.base_url.clone().or(top.base_url),
            api_key: chosen.api_key.clone().or(top.api_key),
            api_key_command: chosen.api_key_command.clone().or(top.api_key_command),
        })
    }
}

/// Returns the key name at the start of an error span such as `timeout = "x"`.
fn key_at_span(fragment: &str) -> String {
    let first = fragment.lines().next().unwrap_or_default();
    let before_equals = first.split('=').next().unwrap_or_default().trim();
    if first.contains('=') {
        before_equals.trim_matches('"').to_owned()
    } else {
        String::new()
    }
}

/// Runs `api_key_command` and returns the first line of its output.
pub fn run_key_command(command: &[String]) -> Result<String, String> {
    let Some((program, args)) = command.split_first() else {
        return Err("api_key_command is empty".to_owned());
    };
    let output = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| format!("api_key_command {program:?} failed to start: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "api_key_command {program:?} exited with {}",
            output.status
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let key = stdout.lines().next().unwrap_or_default().trim().to_owned();
    if key.is_empty() {
        return Err(format!("api_key_command {program:?} printed no key"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/tmp/config.toml"))
    }

    #[test]
    fn empty_config_is_default() {
        assert_eq!(parse("").ok(), Some(Config::default()));
    }

    #[test]
    fn full_config_parses() {
        let config = parse(
            r##"
base_url = "http://127.0.0.1:8080/v1"
default_profile = "work"

[profiles.work]
api_key_command = ["pass", "show", "assisters"]

[theme]
accent = "#ff8800"

[keys]
"ctrl-n" = "new_thread"

[tools.lookup_user]
command = ["./lookup.sh", "--json"]
timeout_secs = 5

[tools.weather]
url = "http://127.0.0.1:9000/tools/weather"
approval = "always"
"##,
        );
        let config = match config {
            Ok(config) => config,
            Err(err) => panic!("{err}"),
        };
        let connection = config.connection(None).unwrap_or_default();
        assert_eq!(
            connection.base_url.as_deref(),
            Some("http://127.0.0.1:8080/v1")
        );
        assert_eq!(
            connection.api_key_command,
            Some(vec!["pass".into(), "show".into(), "assisters".into()])
        );
        assert_eq!(config.theme.accent, "#ff8800");
        assert_eq!(config.theme.user, "green");
        assert_eq!(config.tools["lookup_user"].timeout_secs, 5);
        assert_eq!(config.tools["weather"].approval, Approval::Always);
    }

    #[test]
    fn error_names_line_and_key() {
        let err =
            parse("base_url = \"x\"\n\n[tools.a]\ncommand = [\"x\"]\ntimeout_secs = \"slow\"\n");
        let message = err
            .map(|_| String::new())
            .unwrap_or_else(|err| err.to_string());
        assert!(message.contains("/tmp/config.toml"), "{message}");
        assert!(message.contains("line 5"), "{message}");
        assert!(message.contains("timeout_secs"), "{message}");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = parse("base_ulr = \"x\"\n");
        let message = err
            .map(|_| String::new())
            .unwrap_or_else(|err| err.to_string());
        assert!(message.contains("base_ulr"), "{message}");
        assert!(message.contains("line 1"), "{message}");
        let later = parse("base_url = \"x\"\n\nbase_ulr = \"x\"\n")
            .map(|_| String::new())
            .unwrap_or_else(|err| err.to_string());
        assert!(later.contains("line 3"), "{later}");
    }

    #[test]
    fn tool_needs_one_handler() {
        let message = parse("[tools.a]\ntimeout_secs = 3\n")
            .map(|_| String::new())
            .unwrap_or_else(|err| err.to_string());
        assert!(
            message.contains("tool a needs a command or a url"),
            "{message}"
        );
    }

    #[test]
    fn unknown_profile_lists_known_ones() {
        let config =
            parse("[profiles.home]\nbase_url = \"http://127.0.0.1:1/v1\"\n").unwrap_or_default();
        let err = config.connection(Some("work")).err().unwrap_or_default();
        assert!(err.contains("\"work\""), "{err}");
        assert!(err.contains("home"), "{err}");
    }
}
