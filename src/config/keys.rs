//! Which sections and keys exist, taken from the serde derives themselves, and messages for
//! the ones that do not ("unknown key `pasword` in [source]; did you mean `password`?").

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use toml::{Table, Value};

use super::{Agent, AgentAuthConfig, Config, GeneralConfig, LogConfig, SmtpConfig};
use super::{SourceConfig, TicketsConfig, WebConfig};

/// The fields of a `#[derive(Deserialize)]` struct, captured from what the derive passes to
/// `deserialize_struct`, so the unknown-key check cannot drift from the structs.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct FieldProbe<'a>(&'a mut Option<&'static [&'static str]>);

    impl<'de> Deserializer<'de> for FieldProbe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("field probe"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = Some(fields);
            Err(de::Error::custom("field probe"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut captured = None;
    let _probe_error = T::deserialize(FieldProbe(&mut captured));
    captured.unwrap_or(&[])
}

fn section_names() -> &'static [&'static str] {
    field_names::<Config>()
}

fn section_fields(section: &str) -> Option<&'static [&'static str]> {
    match section {
        "general" => Some(field_names::<GeneralConfig>()),
        "source" => Some(field_names::<SourceConfig>()),
        "smtp" => Some(field_names::<SmtpConfig>()),
        "tickets" => Some(field_names::<TicketsConfig>()),
        "web" => Some(field_names::<WebConfig>()),
        "agent_auth" => Some(field_names::<AgentAuthConfig>()),
        "agents" => Some(field_names::<Agent>()),
        "log" => Some(field_names::<LogConfig>()),
        _ => None,
    }
}

fn unknown_section_message(section: &str) -> String {
    let sections = section_names();
    match closest(section, sections) {
        Some(near) => format!("unknown section [{section}]; did you mean [{near}]?"),
        None => format!(
            "unknown section [{section}]; sections are {}",
            sections.join(", ")
        ),
    }
}

/// `None` when `section.key` exists, else a message naming both.
pub(super) fn unknown_key_problem(section: &str, key: &str) -> Option<String> {
    let Some(fields) = section_fields(section) else {
        return Some(unknown_section_message(section));
    };
    if fields.contains(&key) {
        return None;
    }
    let place = if section == "agents" {
        "[[agents]]".to_string()
    } else {
        format!("[{section}]")
    };
    Some(match closest(key, fields) {
        Some(near) => format!("unknown key `{key}` in {place}; did you mean `{near}`?"),
        None => format!(
            "unknown key `{key}` in {place}; known keys: {}",
            fields.join(", ")
        ),
    })
}

pub(super) fn file_key_problems(file: &Table) -> Vec<String> {
    let mut problems = Vec::new();
    for (section, value) in file {
        if section_fields(section).is_none() {
            problems.push(unknown_section_message(section));
            continue;
        }
        let tables: Vec<&Table> = match (section.as_str(), value) {
            ("agents", Value::Array(items)) => items.iter().filter_map(Value::as_table).collect(),
            ("agents", _) => {
                problems.push("write each agent as an [[agents]] block (double brackets)".into());
                continue;
            }
            (_, Value::Table(table)) => vec![table],
            (_, _) => {
                problems.push(format!(
                    "`{section}` must be a section: write [{section}] on its own line with its keys below it"
                ));
                continue;
            }
        };
        let keys = tables.iter().flat_map(|table| table.keys());
        problems.extend(keys.filter_map(|key| unknown_key_problem(section, key)));
    }
    problems.dedup();
    problems
}

/// The closest name within a small edit distance, for "did you mean" hints.
fn closest(wrong: &str, names: &[&'static str]) -> Option<&'static str> {
    let limit = if wrong.len() <= 4 { 1 } else { 2 };
    names
        .iter()
        .map(|name| (edit_distance(wrong, name), *name))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_has_its_field_list() {
        assert!(section_names().len() >= 8);
        for section in section_names() {
            let fields = section_fields(section).unwrap_or_default();
            assert!(!fields.is_empty(), "no fields for [{section}]");
        }
        assert!(section_fields("source")
            .unwrap_or_default()
            .contains(&"password"));
    }

    #[test]
    fn suggestions_are_close_names_only() {
        assert_eq!(closest("pasword", &["password", "port"]), Some("password"));
        assert_eq!(closest("zzz", &["password", "port"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
