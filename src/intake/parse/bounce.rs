//! Delivery status facts from bounces: RFC 3464 `multipart/report` DSNs, and best effort for
//! the older non-DSN bounces (Exim, qmail, Exchange) that quote the original inline.
//!
//! mail-parser exposes a DSN's parts like this: `message/delivery-status` is not a type it
//! knows, so it arrives as a `Binary` attachment holding the raw status fields;
//! `text/rfc822-headers` is a `Text` attachment; `message/rfc822` is a nested `Message` (or
//! `Binary` when the nested parse failed). The status fields are read line by line here,
//! tolerating `rfc822;` address-type prefixes and folded lines.

use std::collections::HashSet;
use std::hash::Hash;

use mail_parser::{Header, Message, PartType};

use crate::model::{BounceInfo, EmailAddress};

use super::{ids_in, lower_content_type};

/// Local parts of the addresses bounces come from.
const DAEMON_LOCAL_PARTS: [&str; 4] = [
    "mailer-daemon",
    "mailer_daemon",
    "mailerdaemon",
    "postmaster",
];

/// Reads the bounce facts of a top-level message. `report_type` is the lower-case
/// `report-type` of a top-level `multipart/report`; `body_text` is the already extracted text.
pub(super) fn extract(
    message: &Message<'_>,
    report_type: Option<&str>,
    from: Option<&EmailAddress>,
    body_text: &str,
) -> Option<BounceInfo> {
    let is_dsn = report_type == Some("delivery-status");
    let from_daemon =
        from.is_some_and(|address| DAEMON_LOCAL_PARTS.contains(&address.local_part()));
    if !is_dsn && !from_daemon {
        return None;
    }

    let mut info = BounceInfo::default();
    let mut loose_text = vec![body_text.to_string()];
    for (index, part) in message.parts.iter().enumerate() {
        // Some MTAs glue the returned headers straight under a boundary line, so mail-parser
        // reads them as the part's own MIME headers; the Message-ID is then found there.
        if index > 0 {
            let glued = header_message_ids(&part.headers, &message.raw_message);
            info.original_message_ids.extend(glued);
        }
        let content_type = lower_content_type(part);
        match (&part.body, content_type.as_deref()) {
            (_, Some("message/delivery-status" | "message/global-delivery-status"))
            | (_, Some("text/delivery-status")) => {
                read_status_fields(&String::from_utf8_lossy(part.contents()), &mut info);
            }
            (PartType::Message(returned), _) => {
                info.original_message_ids
                    .extend(returned_message_ids(returned));
            }
            (_, Some("text/rfc822-headers" | "message/rfc822-headers" | "message/rfc822")) => {
                let headers = String::from_utf8_lossy(part.contents());
                info.original_message_ids.extend(message_id_lines(&headers));
            }
            (PartType::Text(text), _) => loose_text.push(text.to_string()),
            _ => {}
        }
    }

    // Non-DSN bounces (and broken DSNs, e.g. a blank line before the status part's
    // Content-Type) carry the same facts as plain text: status fields first, then any
    // failure code written in the prose; the original quoted inline.
    if info.status_codes.is_empty() {
        for text in &loose_text {
            read_status_fields(text, &mut info);
        }
    }
    if info.status_codes.is_empty() && !is_dsn {
        for text in &loose_text {
            info.status_codes.extend(failure_codes_in(text));
        }
    }
    if info.original_message_ids.is_empty() {
        for text in &loose_text {
            info.original_message_ids.extend(message_id_lines(text));
        }
    }

    dedup_in_order(&mut info.status_codes);
    dedup_in_order(&mut info.recipients);
    dedup_in_order(&mut info.original_message_ids);
    let found_anything = !info.status_codes.is_empty()
        || !info.recipients.is_empty()
        || !info.original_message_ids.is_empty();
    (is_dsn || found_anything).then_some(info)
}

/// The Message-ID of a returned message, read from its own header block.
fn returned_message_ids(returned: &Message<'_>) -> Vec<String> {
    returned
        .parts
        .first()
        .map(|root| header_message_ids(&root.headers, &returned.raw_message))
        .unwrap_or_default()
}

/// Message-IDs of the `Message-ID` fields among `headers`, whose offsets point into `raw`.
fn header_message_ids(headers: &[Header<'_>], raw: &[u8]) -> Vec<String> {
    headers
        .iter()
        .filter(|header| header.name.as_str().eq_ignore_ascii_case("message-id"))
        .filter_map(|header| {
            let bytes = raw.get(header.offset_start as usize..header.offset_end as usize)?;
            ids_in(&String::from_utf8_lossy(bytes)).into_iter().next()
        })
        .collect()
}

/// Parses `Status:`, `Final-Recipient:` and `Original-Recipient:` fields of a
/// `message/delivery-status` body into `info`.
fn read_status_fields(text: &str, info: &mut BounceInfo) {
    for (name, value) in unfolded_fields(text) {
        match name.as_str() {
            "status" => {
                if let Some(code) = value.split_whitespace().find_map(status_code) {
                    info.status_codes.push(code);
                }
            }
            "final-recipient" | "original-recipient" | "x-actual-recipient" => {
                let address = value.rsplit_once(';').map_or(value.as_str(), |(_, a)| a);
                info.recipients.extend(EmailAddress::parse(address));
            }
            _ => {}
        }
    }
}

/// Splits header-like text into `(lower-case name, unfolded value)` pairs. Lines that are
/// neither a field nor a continuation are ignored.
fn unfolded_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty() && !name.contains(char::is_whitespace) {
                fields.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
        }
    }
    fields
}

/// Message-IDs on `Message-ID:` lines of quoted headers, also when quoted with `> `.
pub(super) fn message_id_lines(text: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let line = line.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("message-id") {
            continue;
        }
        let mut value = value.to_string();
        // A folded value continues on the next indented line.
        if value.trim().is_empty() {
            if let Some(next) = lines.peek() {
                value = next.to_string();
            }
        }
        if let Some(id) = ids_in(&value).into_iter().next() {
            ids.push(id);
        }
    }
    dedup_in_order(&mut ids);
    ids
}

/// Enhanced status codes of failures (`4.x.x`, `5.x.x`) written anywhere in free text.
fn failure_codes_in(text: &str) -> Vec<String> {
    let mut codes = Vec::new();
    let is_code_char = |c: char| c.is_ascii_digit() || c == '.';
    for candidate in text.split(|c: char| !is_code_char(c)) {
        // `candidate` is a maximal run of digits and dots, so "10.5.1.1" never yields 5.1.1.
        let candidate = candidate.trim_end_matches('.');
        if candidate.starts_with(['4', '5']) {
            if let Some(code) = status_code(candidate) {
                codes.push(code);
            }
        }
    }
    dedup_in_order(&mut codes);
    codes
}

/// Accepts `class.subject.detail` as RFC 3463 writes it (`5.1.1`, `4.7.500`).
fn status_code(token: &str) -> Option<String> {
    let token = token.trim_matches(|c: char| !c.is_ascii_digit() && c != '.');
    let token = token.trim_end_matches('.');
    let mut pieces = token.split('.');
    let class = pieces.next()?;
    let subject = pieces.next()?;
    let detail = pieces.next()?;
    let valid = pieces.next().is_none()
        && matches!(class, "2" | "4" | "5")
        && (1..=3).contains(&subject.len())
        && (1..=3).contains(&detail.len())
        && subject
            .chars()
            .chain(detail.chars())
            .all(|c| c.is_ascii_digit());
    valid.then(|| token.to_string())
}

/// Drops repeats, keeping each item's first place. Through a set: a `contains` per item made
/// a bounce with many distinct codes or Message-IDs quadratic.
fn dedup_in_order<T: Eq + Hash + Clone>(list: &mut Vec<T>) {
    let mut seen = HashSet::with_capacity(list.len());
    list.retain(|item| seen.insert(item.clone()));
}

#[cfg(test)]
mod tests {
    use super::{failure_codes_in, message_id_lines, status_code};

    #[test]
    fn finds_status_codes_and_ids_in_free_text() {
        let cases: &[(&str, &[&str])] = &[
            ("550 5.1.1 <x@example.org>: user unknown", &["5.1.1"]),
            ("Sorry, no mailbox here by that name. (#5.1.1)", &["5.1.1"]),
            ("host 10.5.1.1 said 452 4.2.2 over quota", &["4.2.2"]),
            ("Postfix 2.10.1 delivered", &[]),
            ("version 5.1", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(failure_codes_in(text), *expected, "text: {text:?}");
        }
        let quoted =
            "  Subject: hi\n> Message-ID: <a@example.com>\nMessage-Id:\n <b@example.com>\n";
        assert_eq!(message_id_lines(quoted), ["a@example.com", "b@example.com"]);
        assert_eq!(status_code("5.1.1"), Some("5.1.1".to_string()));
        assert_eq!(status_code("5.1.1.1"), None);
    }

    /// Repeats used to be found with a `contains` per item: 200,000 distinct codes or IDs
    /// ran for minutes. No clock is read; under the old code this does not finish in time.
    #[test]
    fn many_distinct_codes_and_ids_are_linear_and_keep_first_places() {
        let codes: Vec<String> = (0..200_000)
            .map(|i| format!("5.{}.{}", i / 1000 % 1000, i % 1000))
            .collect();
        let text = format!("{} {}", codes.join(" "), codes.join(" "));
        assert_eq!(failure_codes_in(&text), codes);

        let ids: Vec<String> = (0..200_000).map(|i| format!("{i}@x")).collect();
        let lines: String = ids
            .iter()
            .chain(ids.iter().rev())
            .map(|id| format!("Message-ID: <{id}>\n"))
            .collect();
        assert_eq!(message_id_lines(&lines), ids);
    }
}
