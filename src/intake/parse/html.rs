//! HTML to readable plain text, for mails whose only body is HTML.
//!
//! mail-parser's own `html_to_text` breaks lines only at `<br>` and `</p>`, so the text of
//! Gmail's and Outlook's `<div>` blocks runs together ("Line 1Line 2"). This converter also
//! breaks at block elements, separates table cells, skips `head`/`style`/`script`/`title`,
//! keeps `<pre>` as written and decodes the common entities. It never panics: all slicing
//! goes through `split_once` on ASCII delimiters.

/// Converts an HTML document or fragment to plain text with `\n` line ends.
pub(super) fn html_to_text(html: &str) -> String {
    let mut out = TextBuilder::default();
    let mut rest = html;
    let mut skipping: Option<String> = None;
    let mut pre_depth = 0usize;

    while let Some((text, after_lt)) = rest.split_once('<') {
        if skipping.is_none() {
            out.push_text(&decode_entities(text), pre_depth > 0);
        }
        if let Some(comment) = after_lt.strip_prefix("!--") {
            rest = comment.split_once("-->").map_or("", |(_, tail)| tail);
            continue;
        }
        let Some((tag, tail)) = after_lt.split_once('>') else {
            // A lone `<` with no closing `>`: keep it as text rather than lose the rest.
            if skipping.is_none() {
                out.push_text("<", pre_depth > 0);
                out.push_text(&decode_entities(after_lt), pre_depth > 0);
            }
            rest = "";
            break;
        };
        rest = tail;
        let (closing, name) = tag_name(tag);
        if let Some(skipped) = &skipping {
            if closing && &name == skipped {
                skipping = None;
            }
            continue;
        }
        match name.as_str() {
            "head" | "style" | "script" | "title" | "template" | "noscript"
                if !closing && !tag.trim_end().ends_with('/') =>
            {
                skipping = Some(name);
            }
            "br" => out.line_break(),
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote" | "table" | "ul"
            | "ol" => out.paragraph_break(),
            "div" | "tr" | "section" | "article" | "header" | "footer" | "address" | "center"
            | "dl" | "dt" | "dd" | "form" | "fieldset" | "figure" => out.block_break(),
            "li" => {
                out.block_break();
                if !closing {
                    out.push_text("- ", true);
                }
            }
            "hr" => {
                out.block_break();
                out.push_text("----", true);
                out.line_break();
            }
            "td" | "th" if closing => out.push_text(" ", false),
            "pre" => {
                out.block_break();
                pre_depth = if closing {
                    pre_depth.saturating_sub(1)
                } else {
                    pre_depth.saturating_add(1)
                };
            }
            _ => {}
        }
    }
    if skipping.is_none() {
        out.push_text(&decode_entities(rest), pre_depth > 0);
    }
    out.finish()
}

/// Splits a tag body (`/div class="x"`, `br/`) into "is a closing tag" and the lower-case name.
fn tag_name(tag: &str) -> (bool, String) {
    let trimmed = tag.trim_start();
    let (closing, body) = match trimmed.strip_prefix('/') {
        Some(body) => (true, body.trim_start()),
        None => (false, trimmed),
    };
    let name = body
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-')
        .collect::<String>()
        .to_ascii_lowercase();
    (closing, name)
}

/// Accumulates text, collapsing HTML whitespace and tracking line starts.
#[derive(Default)]
struct TextBuilder {
    text: String,
    pending_space: bool,
}

impl TextBuilder {
    fn at_line_start(&self) -> bool {
        self.text.is_empty() || self.text.ends_with('\n')
    }

    fn push_text(&mut self, text: &str, preformatted: bool) {
        for c in text.chars() {
            if preformatted {
                if c != '\r' {
                    self.text.push(c);
                }
                continue;
            }
            if c.is_whitespace() {
                self.pending_space = true;
                continue;
            }
            if c.is_control() {
                continue;
            }
            if self.pending_space && !self.at_line_start() {
                self.text.push(' ');
            }
            self.pending_space = false;
            self.text.push(c);
        }
    }

    fn line_break(&mut self) {
        let kept = self.text.trim_end_matches([' ', '\t']).len();
        self.text.truncate(kept);
        self.text.push('\n');
        self.pending_space = false;
    }

    fn block_break(&mut self) {
        if !self.at_line_start() {
            self.line_break();
        }
        self.pending_space = false;
    }

    fn paragraph_break(&mut self) {
        self.block_break();
        if !self.text.is_empty() && !self.text.ends_with("\n\n") {
            self.line_break();
        }
    }

    /// Trims every line's end, allows at most one blank line in a row, trims the whole.
    fn finish(self) -> String {
        let mut result = String::with_capacity(self.text.len());
        let mut blank_run = 0usize;
        for line in self.text.split('\n') {
            let line = line.trim_end();
            if line.is_empty() {
                blank_run += 1;
                if blank_run > 1 {
                    continue;
                }
            } else {
                blank_run = 0;
            }
            result.push_str(line);
            result.push('\n');
        }
        result.trim().to_string()
    }
}

/// The longest entity name (between `&` and `;`) that is looked at.
const MAX_ENTITY_NAME: usize = 10;

/// Decodes `&amp;`-style named entities (the ones mail clients actually emit) and numeric
/// references. Unknown or malformed entities are kept as written.
fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((before, after_amp)) = rest.split_once('&') {
        out.push_str(before);
        // The `;` is looked for only where an entity name can end: searching the whole rest
        // for every `&` made a body of many `&` quadratic (0.6 s for 80 KB in a release build,
        // minutes for a few MB).
        let entity = after_amp
            .bytes()
            .take(MAX_ENTITY_NAME + 1)
            .position(|b| b == b';')
            .filter(|&end| end > 0)
            .and_then(|end| Some((after_amp.get(..end)?, after_amp.get(end + 1..)?)));
        match entity.and_then(|(name, tail)| decode_entity(name).map(|c| (c, tail))) {
            Some((decoded, tail)) => {
                if let Some(c) = decoded {
                    out.push(c);
                }
                rest = tail;
            }
            None => {
                out.push('&');
                rest = after_amp;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `Some(Some(c))` for a known entity, `Some(None)` for one that decodes to nothing (soft
/// hyphen, zero-width characters), `None` when unknown.
fn decode_entity(name: &str) -> Option<Option<char>> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse::<u32>().ok()?,
        };
        return Some(Some(
            char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER),
        ));
    }
    let c = match name {
        "amp" | "AMP" => '&',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "quot" | "QUOT" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "laquo" => '«',
        "raquo" => '»',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        "deg" => '°',
        "times" => '×',
        "shy" | "zwnj" | "zwj" => return Some(None),
        _ => return None,
    };
    Some(Some(c))
}

#[cfg(test)]
mod tests {
    use super::html_to_text;

    #[test]
    fn converts_common_mail_html() {
        let cases: &[(&str, &str)] = &[
            (
                "<div>Line 1</div><div>Line 2</div>",
                "Line 1\nLine 2",
            ),
            (
                "<html><head><title>T</title><style>p{color:red}</style></head><body><p>Hello&nbsp;there,</p><p>Thanks &amp; regards</p></body></html>",
                "Hello there,\n\nThanks & regards",
            ),
            (
                "<div dir=\"ltr\">Hi<div><br></div><div>Bye</div></div>",
                "Hi\n\nBye",
            ),
            ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
            ("a <!-- secret --> b &#1055;&#x440;&unknown; x &lt;tag&gt;", "a b Пр&unknown; x <tag>"),
            ("<pre>  keep\n   this</pre>after", "keep\n   this\nafter"),
            ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
            ("unterminated <b", "unterminated <b"),
            ("<script>alert(1)</script>ok", "ok"),
            ("", ""),
        ];
        for (html, expected) in cases {
            assert_eq!(&html_to_text(html), expected, "input: {html:?}");
        }
    }

    #[test]
    fn entity_names_end_within_ten_bytes() {
        let cases: &[(&str, &str)] = &[
            ("&#000000065;", "A"),
            ("&#0000000065;", "&#0000000065;"),
            ("&;", "&;"),
            ("&&amp;", "&&"),
            ("&Ж;&amp;", "&Ж;&"),
            ("a & b ; c", "a & b ; c"),
        ];
        for (html, expected) in cases {
            assert_eq!(&html_to_text(html), expected, "input: {html:?}");
        }
    }

    /// Every `&` used to scan the rest of the text for a `;`: two million of them ran for
    /// minutes. No clock is read; under the old code this simply does not finish in time.
    #[test]
    fn many_ampersands_are_linear() {
        let html = format!("{};&amp;", "&".repeat(2_000_000));
        let text = html_to_text(&html);
        assert_eq!(text.len(), 2_000_002);
        assert!(text.ends_with(";&"));
    }
}
