//! Raw RFC 5322 bytes → [`InboundMail`]: the one place that knows mail-parser.
//!
//! Invariants:
//! - Pure: no I/O, no clock, no logging; the same bytes always give the same value.
//! - Never panics, whatever the input (binary junk, truncated MIME, CR-only line ends,
//!   8-bit or huge headers). Slicing goes through `get`, and the whole parse runs under
//!   `catch_unwind` as a last line of defence against a bug in the MIME library.
//! - Header facts (IDs, addresses, signals) come from the top-level header block only;
//!   where a header occurs twice, the first occurrence wins.
//! - `dedupe_key` is computed from the bytes exactly as received, so [`parse`] and
//!   [`parse_headers_only`] give the same key for the same message.

mod attachments;
mod bounce;
mod html;

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mail_parser::{Addr, HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use crate::model::{AutoSignals, EmailAddress, InboundMail, Mailbox};

/// How much of an oversized message [`parse_headers_only`] reads at most.
pub const HEADER_BLOCK_LIMIT: usize = 256 * 1024;

/// Why a byte string could not be read as a mail at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Empty input, or no header block mail-parser accepts with at least one standard
    /// header field (binary junk ends here).
    #[error("not a mail: no recognisable header block")]
    NotAMail,
    /// The MIME library panicked on this input; the message should be quarantined.
    #[error("the MIME parser failed on this input")]
    ParserFailed,
}

/// Parses a complete message: headers, body text (text/plain, else converted from HTML),
/// attachments, auto-reply signals and bounce facts.
pub fn parse(raw: &[u8]) -> Result<InboundMail, ParseError> {
    guarded(|| {
        let prepared = prepare(raw);
        let message = MessageParser::default()
            .parse(prepared.as_slice())
            .ok_or(ParseError::NotAMail)?;
        ensure_has_standard_header(&message)?;
        let mut mail = header_facts(&message, raw);
        mail.text = body_text(&message);
        mail.attachments = attachments::attachments(&message);
        mail.bounce = bounce::extract(
            &message,
            mail.signals.report_type.as_deref(),
            mail.signals.from_address.as_ref(),
            &mail.text,
        );
        Ok(mail)
    })
}

/// For a message over the size limit: parses only the header block (cut at the first empty
/// line, and at most [`HEADER_BLOCK_LIMIT`] bytes) so the sender, subject, Message-ID and
/// signals are known without reading the body. Body text and attachments are empty, and
/// `bounce` is `None` (the report parts are in the body).
pub fn parse_headers_only(raw: &[u8]) -> Result<InboundMail, ParseError> {
    guarded(|| {
        let prefix = raw.get(..HEADER_BLOCK_LIMIT).unwrap_or(raw);
        let block = header_block(&prepare(prefix));
        let message = MessageParser::default()
            .parse_headers(block.as_slice())
            .ok_or(ParseError::NotAMail)?;
        ensure_has_standard_header(&message)?;
        Ok(header_facts(&message, raw))
    })
}

/// The content hash used as dedupe key when a mail has no Message-ID: `sha256:<hex>`.
pub fn content_hash(raw: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(raw))
}

/// Runs `work`, turning a panic into [`ParseError::ParserFailed`].
fn guarded(
    work: impl FnOnce() -> Result<InboundMail, ParseError>,
) -> Result<InboundMail, ParseError> {
    // The closure only reads its input and builds owned values, so no broken state can be
    // observed after an unwind.
    catch_unwind(AssertUnwindSafe(work)).unwrap_or(Err(ParseError::ParserFailed))
}

/// Repairs framing problems mail-parser does not handle: blank or space-only lines before
/// the headers (it would read them as an empty header block), an mbox `From ` envelope line,
/// and CR-only line ends (old Mac), which it would read as one long line.
fn prepare(raw: &[u8]) -> Vec<u8> {
    let first_visible = raw
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(raw.len());
    let raw = raw.get(first_visible..).unwrap_or_default();
    let without_envelope = if raw.starts_with(b"From ") {
        raw.iter()
            .position(|&b| b == b'\n')
            .and_then(|newline| raw.get(newline + 1..))
            .unwrap_or_default()
    } else {
        raw
    };
    if without_envelope.contains(&b'\n') {
        return without_envelope.to_vec();
    }
    without_envelope
        .iter()
        .map(|&b| if b == b'\r' { b'\n' } else { b })
        .collect()
}

/// The header block of `rest` (already through [`prepare`]) up to and including its first
/// empty line, always ending with a blank line (mail-parser drops an ID header that is not
/// terminated by a line break).
fn header_block(rest: &[u8]) -> Vec<u8> {
    let end = rest
        .windows(2)
        .position(|pair| pair == b"\n\n")
        .map(|at| at + 2)
        .into_iter()
        .chain(
            rest.windows(3)
                .position(|triple| triple == b"\n\r\n")
                .map(|at| at + 3),
        )
        .min()
        .unwrap_or(rest.len());
    let mut block = rest.get(..end).unwrap_or(rest).to_vec();
    if !block.ends_with(b"\n\n") && !block.ends_with(b"\n\r\n") {
        block.extend_from_slice(b"\n\n");
    }
    block
}

/// Rejects input in which mail-parser found only unknown header names: that is what binary
/// junk or a text file looks like, and routing such a "mail" would be meaningless.
fn ensure_has_standard_header(message: &Message<'_>) -> Result<(), ParseError> {
    let root_headers = message.parts.first().map(|root| root.headers.as_slice());
    let has_standard = root_headers
        .unwrap_or_default()
        .iter()
        .any(|header| !header.name.is_other());
    if has_standard {
        Ok(())
    } else {
        Err(ParseError::NotAMail)
    }
}

/// Everything that comes from the top-level header block. Body fields are left empty.
fn header_facts(message: &Message<'_>, raw: &[u8]) -> InboundMail {
    let from = first_mailbox(message, &HeaderName::From);
    let reply_to = first_mailbox(message, &HeaderName::ReplyTo).map(|mut reply_to| {
        // "Reply-To: same@address" without a name should not lose the From display name.
        if let Some(from) = from.as_ref().filter(|f| f.email == reply_to.email) {
            if reply_to.name.is_empty() {
                reply_to.name = from.name.clone();
            }
        }
        reply_to
    });
    let message_id = header_values(message, "Message-ID")
        .into_iter()
        .find_map(|value| single_message_id(&value));
    let dedupe_key = message_id.clone().unwrap_or_else(|| content_hash(raw));

    InboundMail {
        dedupe_key,
        message_id,
        sender: reply_to.or_else(|| from.clone()),
        recipients: recipients(message),
        subject: subject(message),
        text: String::new(),
        in_reply_to: header_values(message, "In-Reply-To")
            .iter()
            .flat_map(|value| ids_in(value))
            .collect(),
        references: header_values(message, "References")
            .iter()
            .flat_map(|value| ids_in(value))
            .collect(),
        date: date(message),
        attachments: Vec::new(),
        signals: signals(message, from.as_ref()),
        bounce: None,
        authentication_results: header_values(message, "Authentication-Results"),
        from,
    }
}

/// The top-level headers, in order.
fn root_headers<'m>(message: &'m Message<'_>) -> impl Iterator<Item = &'m mail_parser::Header<'m>> {
    message
        .parts
        .first()
        .map(|root| root.headers.as_slice())
        .unwrap_or_default()
        .iter()
}

/// All values of a top-level header (name compared case-insensitively) as raw text:
/// unfolded, control characters turned into spaces, trimmed.
fn header_values(message: &Message<'_>, name: &str) -> Vec<String> {
    root_headers(message)
        .filter(|header| header.name.as_str().eq_ignore_ascii_case(name))
        .filter_map(|header| {
            let bytes = message
                .raw_message
                .get(header.offset_start as usize..header.offset_end as usize)?;
            Some(unfold(&String::from_utf8_lossy(bytes)))
        })
        .collect()
}

/// Removes line breaks, turns other control characters into spaces, trims.
fn unfold(value: &str) -> String {
    value
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// The first value of a header, lower-case, when present and not empty.
fn lower_value(message: &Message<'_>, name: &str) -> Option<String> {
    header_values(message, name)
        .into_iter()
        .next()
        .map(|value| value.to_lowercase())
        .filter(|value| !value.is_empty())
}

/// Message-IDs in a header value, without brackets, in order. Values written without
/// angle brackets (broken clients) are accepted when they look like `local@domain`.
///
/// Duplicates are dropped through a set: a linear search per ID made a `References` header
/// of many IDs quadratic (0.2 s for 8,000 IDs in a release build, minutes for a few MB).
pub(super) fn ids_in(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    let mut rest = value;
    while let Some((_, after_open)) = rest.split_once('<') {
        let Some((inner, after_close)) = after_open.split_once('>') else {
            break;
        };
        let id: String = inner.chars().filter(|c| !c.is_whitespace()).collect();
        if !id.is_empty() && seen.insert(id.clone()) {
            ids.push(id);
        }
        rest = after_close;
    }
    if ids.is_empty() {
        for token in value.split(|c: char| c.is_whitespace() || c == ',') {
            let token = token.trim_matches(['<', '>']);
            if token.contains('@') && seen.insert(token.to_string()) {
                ids.push(token.to_string());
            }
        }
    }
    ids
}

/// The Message-ID of one header value: the first bracketed ID, else the bare token.
fn single_message_id(value: &str) -> Option<String> {
    if let Some(id) = ids_in(value).into_iter().next() {
        return Some(id);
    }
    let bare = value.trim().trim_matches(['<', '>']).trim();
    (!bare.is_empty() && !bare.contains(char::is_whitespace)).then(|| bare.to_string())
}

/// The first mailbox of the first header `name` whose address parses (groups included).
fn first_mailbox(message: &Message<'_>, name: &HeaderName<'_>) -> Option<Mailbox> {
    let header = root_headers(message).find(|header| &header.name == name)?;
    header.value.as_address()?.iter().find_map(mailbox)
}

fn mailbox(addr: &Addr<'_>) -> Option<Mailbox> {
    let email = EmailAddress::parse(addr.address.as_deref()?)?;
    let name = clean_display_name(addr.name.as_deref().unwrap_or_default());
    Some(Mailbox { email, name })
}

/// A decoded display name made safe to show and to put back into a header.
fn clean_display_name(name: &str) -> String {
    let single_line = collapse_whitespace(name);
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|quote| {
            single_line
                .strip_prefix(*quote)
                .and_then(|inner| inner.strip_suffix(*quote))
        })
        .unwrap_or(&single_line);
    unquoted.trim().to_string()
}

/// Collapses every run of whitespace into one space, drops other control characters, trims.
pub(super) fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = true;
        } else if !c.is_control() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    out
}

/// `To` and `Cc` addresses, every occurrence, in order, without duplicates (found through a
/// set: a `contains` per address made 40,000 recipients take seconds).
fn recipients(message: &Message<'_>) -> Vec<EmailAddress> {
    let mut addresses: Vec<EmailAddress> = Vec::new();
    let mut seen = HashSet::new();
    let headers = root_headers(message)
        .filter(|header| matches!(header.name, HeaderName::To | HeaderName::Cc));
    for address in headers.filter_map(|header| header.value.as_address()) {
        for email in address
            .iter()
            .filter_map(|addr| EmailAddress::parse(addr.address.as_deref()?))
        {
            if seen.insert(email.clone()) {
                addresses.push(email);
            }
        }
    }
    addresses
}

/// The decoded subject on one line; empty when missing.
fn subject(message: &Message<'_>) -> String {
    root_headers(message)
        .find(|header| header.name == HeaderName::Subject)
        .and_then(|header| header.value.as_text())
        .map(collapse_whitespace)
        .unwrap_or_default()
}

/// The first valid `Date` header as unix seconds.
fn date(message: &Message<'_>) -> Option<i64> {
    root_headers(message)
        .filter(|header| header.name == HeaderName::Date)
        .filter_map(|header| header.value.as_datetime())
        .find(|date| date.is_valid())
        .map(|date| date.to_timestamp())
}

fn signals(message: &Message<'_>, from: Option<&Mailbox>) -> AutoSignals {
    let present = |name: &str| !header_values(message, name).is_empty();
    let top_type = message.parts.first().and_then(lower_content_type);
    AutoSignals {
        auto_submitted: lower_value(message, "Auto-Submitted"),
        precedence: lower_value(message, "Precedence"),
        x_autoreply: header_values(message, "X-Autoreply")
            .iter()
            .any(|value| !value.eq_ignore_ascii_case("no")),
        x_autorespond: present("X-Autorespond"),
        x_auto_response_suppress: lower_value(message, "X-Auto-Response-Suppress"),
        // List managers that predate List-Id (fml, ezmlm) still send List-Post,
        // List-Subscribe or Mailing-List: all mark list traffic.
        list_id: ["List-Id", "List-Post", "List-Subscribe", "Mailing-List"]
            .into_iter()
            .any(present),
        list_unsubscribe: present("List-Unsubscribe"),
        null_return_path: header_values(message, "Return-Path")
            .iter()
            .any(|value| is_null_return_path(value)),
        report_type: if top_type.as_deref() == Some("multipart/report") {
            content_type_attribute(message.parts.first(), "report-type")
        } else {
            None
        },
        from_address: from.map(|mailbox| mailbox.email.clone()),
    }
}

/// `<>`, the null reverse path; also `<MAILER-DAEMON>`, which Postfix's pipe(8) and local(8)
/// write for it (`flags=R` without `null_sender=`).
fn is_null_return_path(value: &str) -> bool {
    let path: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    path == "<>" || path.eq_ignore_ascii_case("<MAILER-DAEMON>")
}

/// A part's `type/subtype`, lower-case, when it has a Content-Type header.
pub(super) fn lower_content_type(part: &MessagePart<'_>) -> Option<String> {
    let content_type = part.content_type()?;
    let main = content_type.ctype().trim().to_ascii_lowercase();
    let sub = content_type
        .subtype()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "octet-stream".to_string());
    let token_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    (token_ok(&main) && token_ok(&sub)).then(|| format!("{main}/{sub}"))
}

/// A Content-Type parameter, lower-case and trimmed (names compared case-insensitively).
fn content_type_attribute(part: Option<&MessagePart<'_>>, name: &str) -> Option<String> {
    part?
        .content_type()?
        .attributes()?
        .iter()
        .find(|attribute| attribute.name.eq_ignore_ascii_case(name))
        .map(|attribute| attribute.value.trim().to_lowercase())
        .filter(|value| !value.is_empty())
}

/// The body text: every text/plain body part, or when there is none every HTML body part
/// converted to text; line ends normalised to `\n`, trailing whitespace trimmed.
///
/// All body parts are joined (not only the first) because Apple Mail splits the text around
/// an inline image into several parts, and the second half is still the customer's words.
fn body_text(message: &Message<'_>) -> String {
    let body_parts: Vec<&MessagePart<'_>> = message
        .text_body
        .iter()
        .filter_map(|&id| message.parts.get(id as usize))
        .collect();
    let plain: Vec<&str> = body_parts
        .iter()
        .filter_map(|part| match &part.body {
            PartType::Text(text) => Some(text.as_ref()),
            _ => None,
        })
        .collect();
    let joined = if plain.is_empty() {
        body_parts
            .iter()
            .filter_map(|part| match &part.body {
                PartType::Html(html) => Some(html::html_to_text(html)),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        plain.join("\n")
    };
    joined
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests;
