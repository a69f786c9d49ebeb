//! The backlog the intake benches feed: real-world messages from `../shared/corpus` (Outlook,
//! Gmail, Apple Mail, bounces, auto-replies, broken charsets) given fresh Message-IDs, plus
//! generated customer mail with realistic sizes: plain text and HTML alternatives of 1–12 KB,
//! one in five with an attachment of 20–300 KB, and replies that quote earlier text.
//! Deterministic (a fixed-seed generator), generated on the fly, never committed.

use std::path::{Path, PathBuf};

/// A small deterministic generator (xorshift64*), so every run feeds the same bytes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Every message file of the shared corpus (empty when it is not beside the repository).
pub fn corpus() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            walk(&path, out);
        } else if !(name.ends_with(".yml") || name == "README.md" || name.starts_with('.')) {
            out.push(path);
        }
    }
}

/// `raw` with a new first header `Message-ID: <id>`; its own Message-ID header (if any) is
/// renamed so the copy is a different mail to the dedupe record.
pub fn with_message_id(raw: &[u8], id: &str) -> Vec<u8> {
    let mut out = format!("Message-ID: <{id}>\r\n").into_bytes();
    let mut in_headers = true;
    let mut line_start = true;
    let mut i = 0;
    while i < raw.len() {
        if line_start && in_headers {
            if raw[i] == b'\n' || (raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n')) {
                in_headers = false;
            } else if raw.len() - i >= 11 && raw[i..i + 11].eq_ignore_ascii_case(b"message-id:") {
                out.extend_from_slice(b"X-Original-");
            }
        }
        line_start = raw[i] == b'\n';
        out.push(raw[i]);
        i += 1;
    }
    out
}

const WORDS: &[&str] = &[
    "printer",
    "invoice",
    "login",
    "password",
    "order",
    "delivery",
    "refund",
    "account",
    "the",
    "is",
    "not",
    "working",
    "since",
    "yesterday",
    "please",
    "help",
    "we",
    "cannot",
    "open",
    "file",
    "error",
    "message",
    "says",
    "again",
    "after",
    "update",
    "thanks",
    "regards",
    "urgent",
    "customer",
    "number",
    "screen",
    "shows",
    "nothing",
    "when",
    "click",
    "button",
];

fn words(rng: &mut Rng, bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + 16);
    let mut line = 0;
    while text.len() < bytes {
        let word = WORDS[rng.below(WORDS.len() as u64) as usize];
        text.push_str(word);
        line += word.len() + 1;
        if line > 66 {
            text.push_str("\r\n");
            line = 0;
        } else {
            text.push(' ');
        }
    }
    text
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + bytes.len() / 57 * 2 + 8);
    for (n, chunk) in bytes.chunks(3).enumerate() {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(v >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
        if n % 19 == 18 {
            out.push_str("\r\n");
        }
    }
    out
}

/// One generated customer mail, number `n`.
pub fn generated(rng: &mut Rng, n: usize, domain: &str) -> Vec<u8> {
    let from = format!("Customer {n} <customer{}@{domain}>", n % 5000);
    let subject = match rng.below(4) {
        0 => format!("Printer on floor {} is broken", n % 9),
        1 => format!("Invoice {n} is wrong"),
        2 => format!("Re: Your order {n}"),
        _ => format!("=?UTF-8?B?0J/RgNC40L3RgtC10YAg4oSWIHtufQ==?= {n}"),
    };
    let length = 600 + rng.below(6000) as usize;
    let mut text = words(rng, length);
    if rng.below(3) == 0 {
        text.push_str("\r\n\r\nOn Mon, 16 Nov 2026 at 10:00, Support wrote:\r\n");
        for line in words(rng, 1500).lines() {
            text.push_str("> ");
            text.push_str(line);
            text.push_str("\r\n");
        }
    }
    let head = format!(
        "From: {from}\r\nTo: Support <support@example.com>\r\nSubject: {subject}\r\n\
         Date: Sun, 22 Nov 2026 10:{:02}:{:02} +0000\r\nMessage-ID: <gen-{n}-{}@{domain}>\r\n\
         MIME-Version: 1.0\r\n",
        n / 60 % 60,
        n % 60,
        rng.next()
    );
    let attachment = rng.below(5) == 0;
    let html = rng.below(2) == 0;
    let mut mail = head;
    if !attachment && !html {
        mail.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
        mail.push_str(&text);
        mail.push_str("\r\n");
        return mail.into_bytes();
    }
    mail.push_str("Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n");
    if html {
        mail.push_str(
            "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n",
        );
        mail.push_str(&text);
        mail.push_str("\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>");
        mail.push_str(&text.replace("\r\n", "<br>\r\n"));
        mail.push_str("</p></body></html>\r\n--alt--\r\n");
    } else {
        mail.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
        mail.push_str(&text);
        mail.push_str("\r\n");
    }
    if attachment {
        let size = 20_000 + rng.below(280_000) as usize;
        let bytes: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
        mail.push_str(&format!(
            "--outer\r\nContent-Type: application/pdf; name=\"scan-{n}.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"scan-{n}.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        ));
        mail.push_str(&base64(&bytes));
        mail.push_str("\r\n");
    }
    mail.push_str("--outer--\r\n");
    mail.into_bytes()
}

/// `count` mails: every third one a corpus message with a fresh Message-ID (while the corpus
/// lasts, then round again), the rest generated.
pub fn backlog(count: usize, seed: u64) -> Vec<Vec<u8>> {
    let corpus = corpus();
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|n| {
            if n % 3 == 0 && !corpus.is_empty() {
                let raw = &corpus[(n / 3) % corpus.len()];
                with_message_id(raw, &format!("corpus-{n}-{seed}@bench.example"))
            } else {
                generated(&mut rng, n, "customers.example")
            }
        })
        .collect()
}

/// Total size and a one-line description of a backlog.
pub fn describe(mails: &[Vec<u8>]) -> String {
    let total: usize = mails.iter().map(Vec::len).sum();
    let mut sizes: Vec<usize> = mails.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    format!(
        "{} mails, {:.1} MB, median {:.1} KB, largest {:.0} KB",
        mails.len(),
        total as f64 / 1e6,
        sizes.get(sizes.len() / 2).copied().unwrap_or(0) as f64 / 1e3,
        sizes.last().copied().unwrap_or(0) as f64 / 1e3
    )
}

/// Resident set size and its high-water mark of process `pid`, in KB (from /proc).
pub fn rss_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
