//! Quoted-history stripping: keeps the part of a reply that a human wrote, for display.
//!
//! The raw message is stored elsewhere, so this may be lossy; it must never lose a whole mail:
//! when nothing is left after cutting, the full text is returned. Input is already
//! `\n`-normalised. The scan is line based and cuts at the first of: our reply marker, an
//! attribution line (`On … wrote:`, `Am … schrieb …:`, `… пише:`, `… написал(а):`), an
//! `-----Original Message-----` separator, an Outlook `From:`/`Sent:` header block, or a
//! trailing block made only of `>`-quoted lines. Signatures are kept on purpose.

/// The marker line our own outgoing mails carry; everything from it down is history.
pub const REPLY_MARKER: &str = "------ Reply above this line ------";

/// The words of [`REPLY_MARKER`], matched case-insensitively when clients re-dash the line.
const MARKER_WORDS: &str = "reply above this line";

/// Inner texts of `-----Original Message-----`-style separators (lower-case).
const SEPARATORS: [&str; 6] = [
    "original message",
    "вихідне повідомлення",
    "исходное сообщение",
    "ursprüngliche nachricht",
    "original nachricht",
    "message d'origine",
];

/// First labels of an Outlook header block (lower-case, with the colon).
const FROM_LABELS: [&str; 4] = ["from:", "від:", "от:", "von:"];

/// Labels that must follow a `From:` label within three lines to make it a header block.
const DATE_LABELS: [&str; 7] = [
    "sent:",
    "date:",
    "надіслано:",
    "дата:",
    "отправлено:",
    "gesendet:",
    "datum:",
];

/// Attribution verbs, as line endings (lower-case). The `(а)`/`(ла)` forms are only ever
/// produced by mail clients, so they need no further evidence.
const VERBS: [&str; 9] = [
    "wrote:",
    "пише:",
    "написав:",
    "написала:",
    "написав(ла):",
    "написал(а):",
    "написал:",
    "написала:",
    "пишет:",
];

/// Words that make a "name" before a verb a sentence instead (`As I wrote:`, `Вот что я
/// написал:`). Lower-case.
const NOT_NAME_WORDS: [&str; 34] = [
    "i", "as", "we", "he", "she", "you", "they", "it", "this", "that", "what", "here", "there",
    "and", "but", "so", "then", "also", "already", "above", "below", "before", "earlier", "on",
    "am", "я", "мы", "что", "как", "вот", "уже", "що", "як", "ось",
];

/// Returns the part of `text` a human wrote above any quoted history, trimmed at the end.
/// Falls back to the whole text (trimmed) when cutting would leave nothing.
pub fn strip_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut cut = first_cut(&lines).unwrap_or(lines.len());
    if let Some(start) = trailing_quote_start(&lines) {
        cut = cut.min(start);
    }
    let kept = tidy(lines.get(..cut).unwrap_or(&lines));
    if kept.is_empty() {
        text.trim().to_string()
    } else {
        kept
    }
}

/// Index of the first line where quoted history starts, by the marker/attribution/header rules.
fn first_cut(lines: &[&str]) -> Option<usize> {
    for (i, raw) in lines.iter().enumerate() {
        let line = unquote(raw);
        if is_marker(line) || is_separator(line) || is_attribution(line) {
            return Some(i);
        }
        if let Some(next) = lines.get(i + 1).map(|l| unquote(l)) {
            // Gmail wraps long attributions; join unless the next line stands on its own.
            let fragment = line.ends_with('<') || next.starts_with('<') || !is_attribution(next);
            if may_wrap(line) && !next.is_empty() && fragment {
                let joined = format!("{line} {next}");
                if is_attribution(&joined) {
                    return Some(i);
                }
            }
        }
        if is_header_block(lines, i) {
            return Some(underscore_before(lines, i).unwrap_or(i));
        }
    }
    None
}

/// Start of a final run of `>`-quoted lines (blank lines allowed inside and after it).
fn trailing_quote_start(lines: &[&str]) -> Option<usize> {
    let mut start = None;
    for (i, line) in lines.iter().enumerate().rev() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.trim_start().starts_with('>') {
            break;
        }
        start = Some(i);
    }
    start
}

/// Joins kept lines, dropping leading blank lines and trailing whitespace.
fn tidy(lines: &[&str]) -> String {
    let first = lines.iter().position(|l| !l.trim().is_empty());
    let Some(first) = first else {
        return String::new();
    };
    lines
        .get(first..)
        .unwrap_or_default()
        .join("\n")
        .trim_end()
        .to_string()
}

/// The line without leading `>` quote prefixes and surrounding whitespace.
fn unquote(line: &str) -> &str {
    line.trim_start_matches(|c: char| c == '>' || c.is_whitespace())
        .trim_end()
}

fn is_marker(line: &str) -> bool {
    line.contains(REPLY_MARKER)
        || (line.starts_with("--") && line.to_lowercase().contains(MARKER_WORDS))
}

fn is_separator(line: &str) -> bool {
    if !line.starts_with("--") {
        return false;
    }
    let inner = line
        .trim_matches(|c: char| c == '-' || c.is_whitespace())
        .to_lowercase();
    SEPARATORS.contains(&inner.as_str())
}

/// A `From:` label followed within 1–3 lines by a `Sent:`/`Date:` label (any language listed).
fn is_header_block(lines: &[&str], i: usize) -> bool {
    let Some(first) = lines.get(i) else {
        return false;
    };
    if !has_label(unquote(first), &FROM_LABELS) {
        return false;
    }
    lines
        .iter()
        .skip(i + 1)
        .take(3)
        .any(|l| has_label(unquote(l), &DATE_LABELS))
}

/// True when the line starts with one of `labels`; `*` from HTML-converted bold is ignored.
fn has_label(line: &str, labels: &[&str]) -> bool {
    let lower = line.trim_start_matches('*').trim_start().to_lowercase();
    labels.iter().any(|l| lower.starts_with(l))
}

/// An Outlook `____` separator right above line `i` (one blank line in between allowed).
fn underscore_before(lines: &[&str], i: usize) -> Option<usize> {
    let is_rule = |l: &str| {
        let l = unquote(l);
        l.len() >= 8 && l.chars().all(|c| c == '_')
    };
    let above = i.checked_sub(1)?;
    let line = lines.get(above)?;
    if is_rule(line) {
        return Some(above);
    }
    if !line.trim().is_empty() {
        return None;
    }
    let above2 = above.checked_sub(1)?;
    lines.get(above2).filter(|l| is_rule(l)).map(|_| above2)
}

/// Whether a line may be the first half of an attribution wrapped over two lines (Gmail).
fn may_wrap(line: &str) -> bool {
    let lower = line.to_lowercase();
    !line.ends_with(':')
        && (lower.starts_with("on ") || lower.starts_with("am ") || line.ends_with('<'))
}

/// Whether one (possibly re-joined) line introduces quoted history.
fn is_attribution(line: &str) -> bool {
    let s = line.trim();
    if !s.ends_with(':') || s.chars().count() > 400 {
        return false;
    }
    let lower = s.to_lowercase();
    let has_digit = s.chars().any(|c| c.is_ascii_digit());
    let has_address = s.contains('@');
    // German: "Am 01.01.24 um 10:00 schrieb John Doe <john@example.com>:"
    if lower.starts_with("am ") && lower.contains("schrieb") && has_digit {
        return true;
    }
    // Gmail in Russian and Yandex use no verb: "пн, 1 янв. 2024 г. в 10:00, Иван <i@x.ru>:"
    if s.ends_with(">:") && has_address && has_digit && s.contains(',') {
        return true;
    }
    for verb in VERBS {
        let Some(head) = strip_suffix_ci(s, verb) else {
            continue;
        };
        let head = head.trim();
        if head.is_empty() {
            return false;
        }
        if verb.contains('(') {
            return true;
        }
        let addressed = has_address && (head.ends_with('>') || !head.contains(' '));
        let english_on = verb == "wrote:" && lower.starts_with("on ") && (has_digit || has_address);
        return english_on || addressed || (verb != "wrote:" && has_digit) || looks_like_name(head);
    }
    false
}

/// `s` without a case-insensitive `suffix` (compared by characters, so any script is safe).
fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let n = suffix.chars().count();
    let (idx, _) = s.char_indices().rev().nth(n.checked_sub(1)?)?;
    let (head, tail) = s.split_at(idx);
    (tail.to_lowercase() == suffix).then_some(head)
}

/// One to four capitalised words that are not pronouns or sentence words: `John Doe`,
/// `Іван Петров`, `"Support Team"`.
fn looks_like_name(head: &str) -> bool {
    let words: Vec<&str> = head.split_whitespace().collect();
    if words.is_empty() || words.len() > 4 {
        return false;
    }
    words.iter().all(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric());
        let capital = w.chars().next().is_some_and(char::is_uppercase);
        capital && !NOT_NAME_WORDS.contains(&w.to_lowercase().as_str())
    })
}

#[cfg(test)]
mod tests;
