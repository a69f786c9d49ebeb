//! Loading: built-in defaults ([`DEFAULTS_TOML`]) → the TOML file → the environment layer
//! (`env.rs`), merged as `toml::Table`s and deserialised once, so unknown keys (`keys.rs`),
//! wrong types and bad values are found in one place and reported as `[section] key: …`. Then
//! paths are resolved against the config file's directory, `password_file`s are read, values
//! are normalised and [`Config::validate`] runs.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use toml::{Table, Value};

use super::env::{env_overrides, EnvOverride};
use super::keys::file_key_problems;
use super::{Config, Secret};

/// The built-in defaults, the first layer. Every key but `general.support_address` has one;
/// `database`, `secret_file`, `source.path` and `smtp.dir` default to `postdesk.db`, `secret`,
/// `inbox` and `outbox` under `data_dir`.
pub const DEFAULTS_TOML: &str = r#"
[general]
data_dir = "var"
base_url = "http://127.0.0.1:8080"
language = "en"
support_name = "Support"

[source]
kind = "maildir"
tls = "implicit"
mailbox = "INBOX"
idle = true
poll_interval = "60s"

[smtp]
kind = "file"
tls = "starttls"
command = "/usr/sbin/sendmail"
timeout = "30s"
retry_for = "3d"
retry_delay = "30s"

[tickets]
auto_close_after = "72h"
close_schedule = "0 */5 * * * *"
reopen_on_reply = true
max_message_bytes = 26214400
max_attachments = 10
max_attachment_bytes = 10485760
auto_reply_limit_per_hour = 10
denied_attachment_extensions = ["exe", "bat", "cmd", "com", "scr", "js", "vbs", "msi", "jar", "ps1"]

[web]
bind = "127.0.0.1:8080"
trusted_proxies = []
lookup_failures_before_lock = 5
lookup_lock = "60m"

[agent_auth]
require_authentication = false
trusted_authserv_ids = []

[log]
level = "info"
format = "text"
"#;

/// Paths that default to a file under `data_dir`: (section, key, file name).
const DATA_DIR_DEFAULTS: [(&str, &str, &str); 4] = [
    ("general", "database", "postdesk.db"),
    ("general", "secret_file", "secret"),
    ("source", "path", "inbox"),
    ("smtp", "dir", "outbox"),
];

/// Reads, layers and validates the config file at `path`. Relative paths inside it are
/// resolved against its directory. Pass [`super::environment`] (or a test's own pairs) as `env`.
pub fn load(path: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Config> {
    let text = fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read config file {}; pass --config PATH or set POSTDESK_CONFIG",
            path.display()
        )
    })?;
    let parent = path.parent().unwrap_or(Path::new("."));
    let base_dir = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
    load_str(&text, &base_dir, env)
        .with_context(|| format!("invalid configuration in {}", path.display()))
}

/// Like [`load`], for a config text: relative paths are resolved against `base_dir`.
pub fn load_str(
    toml_text: &str,
    base_dir: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config> {
    let mut merged: Table =
        toml::from_str(DEFAULTS_TOML).context("the built-in defaults do not parse")?;
    let file: Table = toml::from_str(toml_text).map_err(|e| anyhow!("{e}"))?;
    problems_to_result(file_key_problems(&file))?;
    merge_file(&mut merged, file);

    let overrides = env_overrides(env)?;
    for entry in &overrides {
        if let Some(table) = section_mut(&mut merged, &entry.section) {
            table.insert(entry.key.clone(), entry.value.clone());
        }
    }
    fill_data_dir_defaults(&mut merged);
    let has_support_address = merged
        .get("general")
        .and_then(|general| general.get("support_address"))
        .is_some();
    if !has_support_address {
        bail!("set [general] support_address = \"support@example.com\" (the address customers write to)");
    }

    let mut config = Config::deserialize(merged)
        .map_err(|error| anyhow!(describe_de_error(&error, &overrides)))?;
    resolve_paths(&mut config, base_dir);
    read_password_file(
        "source",
        &mut config.source.password,
        &config.source.password_file,
    )?;
    read_password_file(
        "smtp",
        &mut config.smtp.password,
        &config.smtp.password_file,
    )?;
    normalise(&mut config);
    config.validate()?;
    Ok(config)
}

/// Turns a list of problems into one error listing them all (so `postdesk check` shows
/// everything to fix at once).
pub(super) fn problems_to_result(problems: Vec<String>) -> Result<()> {
    match problems.len() {
        0 => Ok(()),
        1 => Err(anyhow!(problems.join(""))),
        n => Err(anyhow!("{n} problems:\n  - {}", problems.join("\n  - "))),
    }
}

fn merge_file(merged: &mut Table, file: Table) {
    for (section, value) in file {
        match (merged.get_mut(&section), value) {
            (Some(Value::Table(defaults)), Value::Table(values)) => defaults.extend(values),
            (_, value) => {
                merged.insert(section, value);
            }
        }
    }
}

fn section_mut<'a>(root: &'a mut Table, section: &str) -> Option<&'a mut Table> {
    root.entry(section)
        .or_insert_with(|| Value::Table(Table::new()))
        .as_table_mut()
}

fn fill_data_dir_defaults(merged: &mut Table) {
    let data_dir = merged
        .get("general")
        .and_then(|general| general.get("data_dir"))
        .and_then(Value::as_str)
        .unwrap_or("var")
        .to_string();
    for (section, key, file_name) in DATA_DIR_DEFAULTS {
        let Some(table) = section_mut(merged, section) else {
            continue;
        };
        if !table.contains_key(key) {
            let path = Path::new(&data_dir).join(file_name);
            table.insert(
                key.into(),
                Value::String(path.to_string_lossy().into_owned()),
            );
        }
    }
}

/// `"invalid type …\nin `source.port`"` becomes `"[source] port: invalid type …"`, with a
/// quoting hint when the value came from the environment.
fn describe_de_error(error: &toml::de::Error, overrides: &[EnvOverride]) -> String {
    let text = error.to_string();
    let Some((_, path)) = text.trim_end().rsplit_once("\nin `") else {
        return text.trim_end().to_string();
    };
    let path = path.trim_end_matches('`');
    let message = error.message().trim_end();
    let Some((section, key)) = path.split_once('.') else {
        return format!("[{path}]: {message}");
    };
    let place = if section == "agents" {
        "[[agents]]".to_string()
    } else {
        format!("[{section}]")
    };
    let from_env = overrides
        .iter()
        .find(|o| o.section == section && o.key == key);
    match from_env {
        Some(o) if message.starts_with("invalid type") => format!(
            "{place} {key}: {message} (from environment variable {v}, read as TOML when it \
             parses as TOML: quote text that looks like a number, {v}='\"2024\"', and write \
             lists as {v}='[\"a\", \"b\"]')",
            v = o.variable
        ),
        Some(o) => format!(
            "{place} {key}: {message} (from environment variable {})",
            o.variable
        ),
        None => format!("{place} {key}: {message}"),
    }
}

fn resolve_paths(config: &mut Config, base_dir: &Path) {
    let resolve = |path: &mut PathBuf| {
        if path.is_relative() {
            *path = base_dir.join(&*path);
        }
    };
    resolve(&mut config.general.data_dir);
    resolve(&mut config.general.database);
    resolve(&mut config.general.secret_file);
    resolve(&mut config.source.path);
    resolve(&mut config.smtp.dir);
    let optional = [
        &mut config.general.templates_dir,
        &mut config.source.password_file,
        &mut config.source.ca_file,
        &mut config.smtp.password_file,
        &mut config.smtp.ca_file,
    ];
    for path in optional.into_iter().flatten() {
        resolve(path);
    }
}

fn read_password_file(
    section: &str,
    password: &mut Option<Secret>,
    file: &Option<PathBuf>,
) -> Result<()> {
    let Some(file) = file else {
        return Ok(());
    };
    if password.is_some() {
        bail!("[{section}] sets both password and password_file; keep only one (password_file keeps the secret out of the config)");
    }
    let text = fs::read_to_string(file).with_context(|| {
        format!(
            "cannot read [{section}] password_file {}; check that it exists and that the user \
             running postdesk may read it (permissions)",
            file.display()
        )
    })?;
    let value = text.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        bail!(
            "[{section}] password_file {} is empty; write the password into it",
            file.display()
        );
    }
    *password = Some(Secret::new(value));
    Ok(())
}

fn normalise(config: &mut Config) {
    let base_url = config
        .general
        .base_url
        .trim()
        .trim_end_matches('/')
        .to_string();
    config.general.base_url = base_url;
    let extensions = config.tickets.denied_attachment_extensions.iter();
    config.tickets.denied_attachment_extensions = extensions
        .map(|ext| ext.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|ext| !ext.is_empty())
        .collect();
    for agent in &mut config.agents {
        agent.name = agent.name.trim().to_string();
        if agent.name.is_empty() {
            agent.name = agent.email.local_part().to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults_parse_and_only_name_known_keys() {
        let defaults: toml::Table = toml::from_str(DEFAULTS_TOML).expect("defaults parse");
        assert_eq!(file_key_problems(&defaults), Vec::<String>::new());
    }
}
