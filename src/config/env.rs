//! The environment layer: `POSTDESK__SECTION__KEY=value` variables, checked against the known
//! keys and typed. Values are read as TOML values when they parse as one (`25`, `true`,
//! `["a", "b"]`, `"quoted text"`) and as plain strings otherwise (`3d`, `imap.example.com`);
//! `password` values are always taken verbatim. `[[agents]]` cannot be set this way. Other
//! variables (`POSTDESK_CONFIG`, `PATH`) are ignored.

use anyhow::{bail, Result};
use toml::{Table, Value};

use super::keys::unknown_key_problem;

const ENV_PREFIX: &str = "POSTDESK__";

/// The process environment as UTF-8 pairs (values converted lossily), for [`super::load()`]. Unlike
/// `std::env::vars` it never panics on a non-Unicode variable.
pub fn environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.to_string_lossy().into())))
        .collect()
}

/// One `POSTDESK__SECTION__KEY=value` variable, checked and typed.
pub(super) struct EnvOverride {
    pub(super) variable: String,
    pub(super) section: String,
    pub(super) key: String,
    pub(super) value: Value,
}

pub(super) fn env_overrides(
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<EnvOverride>> {
    let mut overrides: Vec<EnvOverride> = Vec::new();
    for (variable, raw) in env {
        let Some(rest) = variable.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let [section, key] = parts.as_slice() else {
            bail!("environment variable {variable}: expected POSTDESK__SECTION__KEY, e.g. POSTDESK__SOURCE__PASSWORD");
        };
        if section == "agents" {
            bail!("environment variable {variable}: [[agents]] cannot be set from the environment; list agents in the config file");
        }
        if let Some(problem) = unknown_key_problem(section, key) {
            bail!("environment variable {variable}: {problem}");
        }
        if let Some(earlier) = overrides
            .iter()
            .find(|o| &o.section == section && &o.key == key)
        {
            bail!(
                "[{section}] {key} is set by both {} and {variable}; keep one",
                earlier.variable
            );
        }
        let value = if key == "password" {
            Value::String(raw)
        } else {
            env_value(raw)
        };
        let (section, key) = (section.clone(), key.clone());
        overrides.push(EnvOverride {
            variable,
            section,
            key,
            value,
        });
    }
    Ok(overrides)
}

/// A TOML value when the text is one (`25`, `true`, `["a"]`, `"text"`), else the text itself.
fn env_value(raw: String) -> Value {
    let parsed = toml::from_str::<Table>(&format!("value = {raw}"));
    match parsed {
        Ok(mut table) if table.len() == 1 => table.remove("value").unwrap_or(Value::String(raw)),
        _ => Value::String(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_typed_when_they_parse_as_toml() {
        let cases = [
            ("25", Value::Integer(25)),
            ("true", Value::Boolean(true)),
            ("3d", Value::String("3d".into())),
            ("\"42\"", Value::String("42".into())),
            ("imap.example.com", Value::String("imap.example.com".into())),
            ("1\nx = 2", Value::String("1\nx = 2".into())),
        ];
        for (raw, wanted) in cases {
            assert_eq!(env_value(raw.to_string()), wanted, "{raw}");
        }
    }
}
