//! Mail text made safe for the page (pure functions).
//!
//! Invariants: everything from mail is shown as text. [`linkify`] escapes every character
//! it copies and wraps only `http://`/`https://` URLs, whose matched text contains no quote,
//! angle bracket, whitespace or control character, so it can never leave the `href`
//! attribute. [`visible_controls`] turns the invisible characters that reorder or hide text
//! (bidi embeddings, overrides, isolates, zero-width spaces) into visible `[U+XXXX]` marks, so
//! a name like `invoice<U+202E>fdp.exe` cannot pose as `invoiceexe.pdf`.

use std::fmt::Write;

/// Escapes `& < > " '` for HTML text and attribute values.
pub fn escape_html(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// True for the characters that reorder or hide text without being seen.
fn is_deceptive(c: char) -> bool {
    matches!(c,
        '\u{202A}'..='\u{202E}'      // LRE RLE PDF LRO RLO
        | '\u{2066}'..='\u{2069}'    // LRI RLI FSI PDI
        | '\u{200B}'                 // zero-width space
        | '\u{2060}'                 // word joiner
        | '\u{FEFF}'                 // zero-width no-break space
        | '\u{061C}'                 // Arabic letter mark
    )
}

/// Replaces deceptive invisible characters with `[U+XXXX]` and control characters other
/// than line breaks and tabs with U+FFFD. Letters, emoji joiners (ZWJ, ZWNJ) and the plain
/// direction marks (LRM, RLM) that right-to-left writing needs are kept.
pub fn visible_controls(text: &str) -> String {
    if !text
        .chars()
        .any(|c| is_deceptive(c) || (c.is_control() && c != '\n' && c != '\t'))
    {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_deceptive(c) {
            let _ = write!(out, "[U+{:04X}]", c as u32);
        } else if c == '\r' {
            // CRLF and lone CR both read as a line break.
            continue;
        } else if c.is_control() && c != '\n' && c != '\t' {
            out.push('\u{FFFD}');
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that end a URL in running text.
fn ends_url(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || is_deceptive(c)
        || matches!(
            c,
            '"' | '\'' | '<' | '>' | '`' | '\\' | '{' | '}' | '|' | '^'
        )
}

/// The length in bytes of the URL starting at the beginning of `text`, if it starts with
/// `http://` or `https://` followed by a host; trailing punctuation is left out.
fn url_len(text: &str) -> Option<usize> {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    let scheme = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else {
        return None;
    };
    let mut end = text
        .char_indices()
        .find(|&(_, c)| ends_url(c))
        .map_or(text.len(), |(i, _)| i);
    // Sentence punctuation after a URL, and a closing bracket without an opening one.
    while end > scheme {
        let last = text[..end].chars().next_back()?;
        let unbalanced = match last {
            ')' => text[..end].matches('(').count() < text[..end].matches(')').count(),
            ']' => text[..end].matches('[').count() < text[..end].matches(']').count(),
            '.' | ',' | ';' | ':' | '!' | '?' | '*' => true,
            _ => false,
        };
        if !unbalanced {
            break;
        }
        end -= last.len_utf8();
    }
    (end > scheme).then_some(end)
}

/// Mail text as HTML: escaped, with `http(s)://` URLs as links that open without a referrer.
/// Any other scheme (`javascript:`, `data:`, `file:`) stays plain text.
pub fn linkify(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut copied = 0;
    let mut index = 0;
    while index < text.len() {
        let rest = &text[index..];
        let starts_url = rest
            .as_bytes()
            .first()
            .is_some_and(|b| b.eq_ignore_ascii_case(&b'h'))
            && text[..index]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
        if let Some(len) = starts_url.then(|| url_len(rest)).flatten() {
            escape_html(&text[copied..index], &mut out);
            let url = &rest[..len];
            out.push_str("<a href=\"");
            escape_html(url, &mut out);
            out.push_str("\" rel=\"nofollow noopener noreferrer\">");
            escape_html(url, &mut out);
            out.push_str("</a>");
            index += len;
            copied = index;
            continue;
        }
        index += rest.chars().next().map_or(1, char::len_utf8);
    }
    escape_html(&text[copied..], &mut out);
    out
}

/// A byte count as people read it: `512 B`, `14.2 KB`, `3.1 MB` (powers of 1024).
pub fn human_size(bytes: i64) -> String {
    let bytes = bytes.max(0) as f64;
    if bytes < 1024.0 {
        format!("{bytes} B")
    } else if bytes < 1024.0 * 1024.0 {
        format!("{:.1} KB", bytes / 1024.0)
    } else {
        format!("{:.1} MB", bytes / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_become_links_and_nothing_escapes_the_attribute() {
        let cases = [
            ("see https://example.com/a?b=1&c=2.", "see <a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"nofollow noopener noreferrer\">https://example.com/a?b=1&amp;c=2</a>."),
            ("javascript:alert(1)", "javascript:alert(1)"),
            ("<a href=\"javascript:alert(1)\">x</a>", "&lt;a href=&quot;javascript:alert(1)&quot;&gt;x&lt;/a&gt;"),
            ("http://x.example/\"><script>alert(1)</script>", "<a href=\"http://x.example/\" rel=\"nofollow noopener noreferrer\">http://x.example/</a>&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
            ("(at http://example.com/wiki/A_(b))", "(at <a href=\"http://example.com/wiki/A_(b)\" rel=\"nofollow noopener noreferrer\">http://example.com/wiki/A_(b)</a>)"),
            ("HTTPS://EXAMPLE.COM", "<a href=\"HTTPS://EXAMPLE.COM\" rel=\"nofollow noopener noreferrer\">HTTPS://EXAMPLE.COM</a>"),
            ("xhttp://example.com", "xhttp://example.com"),
            ("http:// nothing", "http:// nothing"),
            ("http://a'onmouseover='x", "<a href=\"http://a\" rel=\"nofollow noopener noreferrer\">http://a</a>&#39;onmouseover=&#39;x"),
            ("Сайт: https://приклад.укр/шлях, так", "Сайт: <a href=\"https://приклад.укр/шлях\" rel=\"nofollow noopener noreferrer\">https://приклад.укр/шлях</a>, так"),
            ("h", "h"),
        ];
        for (input, expected) in cases {
            assert_eq!(linkify(input), expected, "{input}");
        }
    }

    #[test]
    fn deceptive_characters_become_visible() {
        assert_eq!(
            visible_controls("invoice\u{202E}fdp.exe"),
            "invoice[U+202E]fdp.exe"
        );
        assert_eq!(
            visible_controls("a\u{200B}b\u{2066}c"),
            "a[U+200B]b[U+2066]c"
        );
        assert_eq!(visible_controls("line\r\nnext\0"), "line\nnext\u{FFFD}");
        assert_eq!(visible_controls("👩\u{200D}💻 ok"), "👩\u{200D}💻 ok");
        // A URL ends before an override, so the link text cannot be turned around.
        assert!(linkify("http://a.example\u{202E}moc.elgoog").starts_with(
            "<a href=\"http://a.example\" rel=\"nofollow noopener noreferrer\">http://a.example</a>"
        ));
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(14_540), "14.2 KB");
        assert_eq!(human_size(3_250_586), "3.1 MB");
    }
}
