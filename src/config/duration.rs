//! Humane durations for the config: `"72h"`, `"3d"`, `"90m"`, `"60s"`, `"1h30m"`, `"500ms"`.
//! A bare number is refused (is `72` hours or seconds?) with a message that says to add a unit.

use std::time::Duration;

use serde::{de, Deserializer};

/// Units in the order a person would write them, with their length in milliseconds.
const UNITS: [(&str, u64); 6] = [
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a sequence of `<integer><unit>` groups (units `w d h m s ms`, spaces allowed
/// around units), e.g. `"1h30m"` or `"1d 12h"`. Errors say what was wrong and give an example.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration; write e.g. \"60s\", \"90m\", \"72h\" or \"3d\"".to_string());
    }
    if trimmed.chars().all(|c| c.is_ascii_digit()) {
        return Err(bare_number_message(trimmed));
    }
    let mut total_ms: u64 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(format!(
                "{text:?} is not a duration: expected a number at {rest:?}; write e.g. \"1h30m\""
            ));
        }
        let (digits, after_digits) = rest.split_at(digits_end);
        let after_digits = after_digits.trim_start();
        let unit_end = after_digits
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after_digits.len());
        let (unit, after_unit) = after_digits.split_at(unit_end);
        let unit_ms = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, ms)| *ms)
            .ok_or_else(|| unit_message(text, unit))?;
        let group_ms = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_ms))
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("{text:?} is too long a duration"))?;
        total_ms = group_ms;
        rest = after_unit.trim_start();
    }
    Ok(Duration::from_millis(total_ms))
}

fn unit_message(text: &str, unit: &str) -> String {
    if unit.is_empty() {
        return format!("{text:?} has a number without a unit; write e.g. \"1h30m\"");
    }
    format!("{text:?} has an unknown unit {unit:?}; use ms, s, m, h, d or w (e.g. \"90m\")")
}

fn bare_number_message(number: &str) -> String {
    format!("{number} has no unit; add one, e.g. \"{number}s\", \"{number}m\" or \"{number}h\"")
}

/// Serde adapter: a duration string, with a helpful error for a TOML integer.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    struct DurationVisitor;

    impl de::Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as \"60s\", \"90m\", \"72h\" or \"3d\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            parse_duration(text).map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, number: i64) -> Result<Duration, E> {
            Err(E::custom(bare_number_message(&number.to_string())))
        }

        fn visit_u64<E: de::Error>(self, number: u64) -> Result<Duration, E> {
            Err(E::custom(bare_number_message(&number.to_string())))
        }

        fn visit_f64<E: de::Error>(self, number: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "{number} is not a duration; write it as a string with a unit, e.g. \"90m\""
            )))
        }
    }

    deserializer.deserialize_any(DurationVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_durations() {
        let cases = [
            ("72h", 72 * 3600 * 1000),
            ("3d", 3 * 86_400 * 1000),
            ("90m", 90 * 60 * 1000),
            ("60s", 60 * 1000),
            ("1h30m", 90 * 60 * 1000),
            ("1h 30m", 90 * 60 * 1000),
            ("500ms", 500),
            ("1s500ms", 1500),
            ("2w", 14 * 86_400 * 1000),
            (" 0s ", 0),
            ("90 m", 90 * 60 * 1000),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_durations() {
        let cases = [
            ("", "empty"),
            ("72", "add one"),
            ("1.5h", "without a unit"),
            ("3 days", "unknown unit \"days\""),
            ("h", "expected a number"),
            ("10x", "unknown unit \"x\""),
            ("-5s", "expected a number"),
            ("99999999999999999999w", "too long"),
        ];
        for (text, wanted) in cases {
            let error = parse_duration(text).expect_err(text);
            assert!(error.contains(wanted), "{text}: {error}");
        }
    }
}
