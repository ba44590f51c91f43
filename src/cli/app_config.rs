//! Checks `[keys]` and `[theme]`, the config sections that only the full-screen app
//! reads. The check runs before the app switches to the alternate screen, so a mistake
//! is printed with the file, line and key like any other config error.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Config;
use crate::tui::keys::Keymap;
use crate::tui::theme::Styles;

use super::error::CliError;

/// Returns a usage error for the first `[keys]` or `[theme]` entry the app cannot use.
pub fn check(config: &Config, path: Option<&Path>) -> Result<(), CliError> {
    let mut problems: Vec<(&str, String, String)> = Vec::new();
    for (key, action) in &config.keys {
        let single = BTreeMap::from([(key.clone(), action.clone())]);
        let (_, errors) = Keymap::with_overrides(&single);
        problems.extend(errors.into_iter().map(|error| ("keys", key.clone(), error)));
    }
    let (_, theme_errors) = Styles::from_theme(&config.theme);
    for error in theme_errors {
        // Messages read `[theme] KEY = VALUE ...`.
        let key = error
            .strip_prefix("[theme] ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_owned();
        problems.push(("theme", key, error));
    }
    let Some((section, key, message)) = problems.into_iter().next() else {
        return Ok(());
    };
    let Some(path) = path else {
        return Err(CliError::Usage(format!("invalid config: {message}")));
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let line = line_of_key(&text, section, &key)
        .map(|line| format!(", line {line}"))
        .unwrap_or_default();
    Err(CliError::Usage(format!(
        "invalid config file {}{line}: {message}",
        path.display()
    )))
}

/// Returns the 1-based line of `key` (bare or quoted) in the table `[section]`.
fn line_of_key(text: &str, section: &str, key: &str) -> Option<usize> {
    let header = format!("[{section}]");
    let quoted = format!("\"{key}\"");
    let mut in_section = false;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == header;
            continue;
        }
        let name = line.split('=').next().unwrap_or_default().trim();
        if in_section && (name == key || name == quoted) {
            return Some(index + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_line_found_in_its_section() {
        let text = "[theme]\naccent = \"cyan\"\n\n[keys]\n\"ctrl-t\" = \"x\"\naccent = \"y\"\n";
        assert_eq!(line_of_key(text, "keys", "ctrl-t"), Some(5));
        assert_eq!(line_of_key(text, "theme", "accent"), Some(2));
        assert_eq!(line_of_key(text, "keys", "missing"), None);
    }
}
