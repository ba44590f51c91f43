//! Turning flags, environment and `config.toml` into a client.
//!
//! Precedence, first set wins: the base URL comes from `--base-url`,
//! `ASSISTERS_BASE_URL`, the config file (the chosen profile, then the top level) and
//! finally the hosted service's default. The key comes from `ASSISTERS_API_KEY`, the
//! config file's `api_key`, then its `api_key_command`. Empty environment variables
//! count as unset.
//!
//! When neither a key nor a base URL is configured anywhere, the app (no subcommand)
//! starts in local mode; see [`Setup::unconfigured`].

use std::path::PathBuf;

use crate::api::client::DEFAULT_BASE_URL;
use crate::api::{Client, ClientConfig};
use crate::config::{self, Config, Paths};

use super::GlobalArgs;
use super::error::CliError;

/// Everything a subcommand or the TUI needs to talk to the API.
pub struct Setup {
    pub config: Config,
    /// The config file that was read (it may not exist).
    pub config_path: Option<PathBuf>,
    pub client_config: ClientConfig,
    /// True when no key and no base URL came from the flags, the environment or
    /// the config file.
    pub unconfigured: bool,
}

impl Setup {
    /// Builds the client; an invalid base URL is a usage error.
    pub fn client(&self) -> Result<Client, CliError> {
        Client::new(self.client_config.clone()).map_err(CliError::from)
    }
}

/// Returns the config file to read: `--config`, or `config.toml` in the config
/// directory.
pub fn config_path(global: &GlobalArgs, paths: Option<&Paths>) -> Option<PathBuf> {
    global
        .config
        .clone()
        .or_else(|| paths.map(Paths::config_file))
}

/// Reads the config file (an absent file gives the defaults) and returns it with its
/// path.
pub fn load_config(
    global: &GlobalArgs,
    paths: Option<&Paths>,
) -> Result<(Config, Option<PathBuf>), CliError> {
    let config_path = config_path(global, paths);
    let config = match &config_path {
        Some(path) => Config::load(path).map_err(|err| CliError::Usage(err.to_string()))?,
        None => Config::default(),
    };
    Ok((config, config_path))
}

/// Reads the config file and resolves the connection, reading the environment.
pub fn resolve(global: &GlobalArgs, paths: Option<&Paths>) -> Result<Setup, CliError> {
    let (config, config_path) = load_config(global, paths)?;
    let env = |name: &str| std::env::var(name).ok();
    let client_config = resolve_connection(global, &config, env)?;
    let unconfigured =
        client_config.api_key.is_none() && configured_base_url(global, &config, env)?.is_none();
    Ok(Setup {
        config,
        config_path,
        client_config,
        unconfigured,
    })
}

/// Resolves the base URL and key with `env` standing in for the environment.
pub fn resolve_connection(
    global: &GlobalArgs,
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ClientConfig, CliError> {
    let base_url =
        configured_base_url(global, config, &env)?.unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    let env = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    let connection = config
        .connection(global.profile.as_deref())
        .map_err(CliError::Usage)?;
    let api_key = match env(config::API_KEY_ENV).or(connection.api_key) {
        Some(key) => Some(key),
        None => match &connection.api_key_command {
            Some(command) => Some(config::run_key_command(command).map_err(CliError::Usage)?),
            None => None,
        },
    };
    Ok(ClientConfig::new(base_url, api_key))
}

/// Returns the base URL from `--base-url`, the environment or the config file, or
/// `None` when none of them sets one.
pub fn configured_base_url(
    global: &GlobalArgs,
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, CliError> {
    let connection = config
        .connection(global.profile.as_deref())
        .map_err(CliError::Usage)?;
    Ok(global
        .base_url
        .clone()
        .or_else(|| env(config::BASE_URL_ENV).filter(|value| !value.trim().is_empty()))
        .or(connection.base_url))
}

/// Returns the key or a usage error saying where to put it.
pub fn require_key(setup: &Setup) -> Result<(), CliError> {
    if setup.client_config.api_key.is_some() {
        return Ok(());
    }
    let file = setup
        .config_path
        .as_ref()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| "config.toml".to_owned());
    Err(CliError::Usage(format!(
        "no API key: set {} or put api_key or api_key_command in {file}",
        config::API_KEY_ENV
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(base_url: Option<&str>, profile: Option<&str>) -> GlobalArgs {
        GlobalArgs {
            base_url: base_url.map(str::to_owned),
            json: false,
            local: false,
            local_model: None,
            yes: false,
            profile: profile.map(str::to_owned),
            config: None,
        }
    }

    fn config(text: &str) -> Config {
        Config::parse(text, std::path::Path::new("test.toml")).unwrap_or_default()
    }

    fn env_with(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn base_url_precedence() {
        let file = config("base_url = \"http://127.0.0.1:3/v1\"\n");
        let env = env_with(&[("ASSISTERS_BASE_URL", "http://127.0.0.1:2/v1")]);
        let flag = global(Some("http://127.0.0.1:1/v1"), None);

        let from_flag = resolve_connection(&flag, &file, &env).map(|c| c.base_url);
        assert_eq!(from_flag.ok().as_deref(), Some("http://127.0.0.1:1/v1"));
        let from_env = resolve_connection(&global(None, None), &file, &env).map(|c| c.base_url);
        assert_eq!(from_env.ok().as_deref(), Some("http://127.0.0.1:2/v1"));
        let from_file =
            resolve_connection(&global(None, None), &file, env_with(&[])).map(|c| c.base_url);
        assert_eq!(from_file.ok().as_deref(), Some("http://127.0.0.1:3/v1"));
        let default = resolve_connection(&global(None, None), &Config::default(), env_with(&[]))
            .map(|c| c.base_url);
        assert_eq!(default.ok().as_deref(), Some(DEFAULT_BASE_URL));
    }

    #[test]
    fn key_precedence_and_empty_env() {
        let file = config("api_key = \"from-file\"\n");
        let env = env_with(&[("ASSISTERS_API_KEY", "from-env")]);
        let key = resolve_connection(&global(None, None), &file, &env).map(|c| c.api_key);
        assert_eq!(key.ok().flatten().as_deref(), Some("from-env"));
        let empty = env_with(&[("ASSISTERS_API_KEY", "  ")]);
        let key = resolve_connection(&global(None, None), &file, &empty).map(|c| c.api_key);
        assert_eq!(key.ok().flatten().as_deref(), Some("from-file"));
    }

    #[test]
    fn profile_overrides_top_level() {
        let file = config(
            "base_url = \"http://127.0.0.1:3/v1\"\n[profiles.local]\nbase_url = \"http://127.0.0.1:4/v1\"\n",
        );
        let chosen = resolve_connection(&global(None, Some("local")), &file, env_with(&[]));
        assert_eq!(
            chosen.map(|c| c.base_url).ok().as_deref(),
            Some("http://127.0.0.1:4/v1")
        );
        let missing = resolve_connection(&global(None, Some("work")), &file, env_with(&[]));
        assert!(matches!(missing, Err(CliError::Usage(message)) if message.contains("work")));
    }

    #[test]
    fn base_url_is_unset_only_when_nothing_sets_it() {
        let none = configured_base_url(&global(None, None), &Config::default(), env_with(&[]));
        assert_eq!(none.ok().flatten(), None);
        let blank = env_with(&[("ASSISTERS_BASE_URL", " ")]);
        let blank = configured_base_url(&global(None, None), &Config::default(), blank);
        assert_eq!(
            blank.ok().flatten(),
            None,
            "an empty variable counts as unset"
        );
        let file = config("base_url = \"http://127.0.0.1:3/v1\"\n");
        let from_file = configured_base_url(&global(None, None), &file, env_with(&[]));
        assert_eq!(
            from_file.ok().flatten().as_deref(),
            Some("http://127.0.0.1:3/v1")
        );
    }

    #[test]
    fn key_command_runs_without_shell() {
        let file = config("api_key_command = [\"echo\", \"from-command\"]\n");
        let key = resolve_connection(&global(None, None), &file, env_with(&[])).map(|c| c.api_key);
        assert_eq!(key.ok().flatten().as_deref(), Some("from-command"));
    }
}
