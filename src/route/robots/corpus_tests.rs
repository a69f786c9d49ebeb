//! Runs `classify` over the real auto-replies and bounces in `../shared/corpus/` with a tiny,
//! self-contained header reader (it does not use `intake::parse`): every file must be judged
//! a robot from its headers and subject alone. `bounce` is left `None` on purpose, so the
//! figures show what header and subject evidence catch without a DSN parser.

use std::path::{Path, PathBuf};

use super::classify;
use super::tests::human_mail;
use crate::model::{AutoSignals, EmailAddress, InboundMail, Mailbox};

fn corpus_dir() -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        here.join("../shared/corpus"),
        here.join("../../shared/corpus"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_lowercase();
        if path.is_dir() {
            if name != "negative" {
                walk(&path, out);
            }
        } else if !(name.starts_with("readme")
            || name == ".gitattributes"
            || name.ends_with(".yml"))
        {
            out.push(path);
        }
    }
}

/// Unfolded `(lower-case name, value)` pairs of the top-level header block. Skips leading
/// blank lines and an mbox `From ` line; stops at the first blank or non-header line.
fn headers(raw: &str) -> Vec<(String, String)> {
    let text = raw.replace("\r\n", "\n").replace('\r', "\n");
    let mut out: Vec<(String, String)> = Vec::new();
    let mut started = false;
    for line in text.split('\n') {
        if !started && (line.trim().is_empty() || line.starts_with("From ")) {
            continue;
        }
        started = true;
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            break;
        };
        out.push((name.trim().to_lowercase(), value.trim().to_string()));
    }
    out
}

fn address(value: &str) -> Option<EmailAddress> {
    let inner = value
        .rsplit_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(addr, _)| addr);
    let candidate = inner.or_else(|| value.split_whitespace().find(|w| w.contains('@')))?;
    EmailAddress::parse(candidate.trim_matches(|c: char| c == '"' || c == '(' || c == ')'))
}

fn decode_subject(raw: &str) -> String {
    let doc = format!("Subject: {raw}\r\n\r\n");
    mail_parser::MessageParser::default()
        .parse(doc.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| raw.to_string())
}

fn mail_from(raw: &str) -> InboundMail {
    let hs = headers(raw);
    let get = |n: &str| hs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let lower = |n: &str| get(n).map(|v| v.trim().to_lowercase());
    let report_type = lower("content-type")
        .filter(|ct| ct.starts_with("multipart/report"))
        .map(|ct| {
            ct.split(';')
                .filter_map(|p| p.trim().strip_prefix("report-type=").map(str::to_string))
                .next()
                .unwrap_or_default()
        });
    let from = get("from").and_then(address);
    let reply_to = get("reply-to").and_then(address).or_else(|| from.clone());
    let mailbox = |email| Mailbox {
        email,
        name: String::new(),
    };
    InboundMail {
        subject: decode_subject(get("subject").unwrap_or("")),
        sender: reply_to.map(mailbox),
        from: from.clone().map(mailbox),
        signals: AutoSignals {
            auto_submitted: lower("auto-submitted"),
            precedence: lower("precedence"),
            x_autoreply: lower("x-autoreply").is_some_and(|v| v != "no"),
            x_autorespond: get("x-autorespond").is_some(),
            x_auto_response_suppress: lower("x-auto-response-suppress"),
            list_id: get("list-id").is_some(),
            list_unsubscribe: get("list-unsubscribe").is_some(),
            null_return_path: get("return-path").is_some_and(|v| v.replace(' ', "") == "<>"),
            report_type,
            from_address: from,
        },
        ..human_mail()
    }
}

/// Files that headers and subject cannot identify, with what would. Kept short on purpose.
const KNOWN_MISSES: [(&str, &str); 2] = [
    (
        "flanker/bounce/delayed-broken.eml",
        "no header block at all, only a bare message/delivery-status body: intake must set `bounce`",
    ),
    (
        "sisimai/bsd/lhost-fml-02.eml",
        "fml list error; only List-Subscribe/Mailing-List/X-ML-* headers, which AutoSignals has no field for",
    ),
];

#[test]
fn corpus_robots_are_recognised() {
    let Some(root) = corpus_dir() else {
        eprintln!("note: ../shared/corpus not found; corpus robot test skipped");
        return;
    };
    for group in ["autoreplies", "bounces"] {
        let mut files = Vec::new();
        walk(&root.join(group), &mut files);
        files.sort();
        assert!(!files.is_empty(), "no files found under {group}");
        let mut missed = Vec::new();
        let mut tally: std::collections::BTreeMap<&str, usize> = Default::default();
        for path in &files {
            let raw =
                String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
            let mail = mail_from(&raw);
            match classify(&mail) {
                Some(reason) => *tally.entry(reason.as_str()).or_default() += 1,
                None => missed.push(format!(
                    "  {}: subject {:?}, from {:?}, no header evidence",
                    path.strip_prefix(&root).unwrap_or(path).display(),
                    mail.subject,
                    mail.signals.from_address.as_ref().map(EmailAddress::as_str),
                )),
            }
        }
        let hit = files.len() - missed.len();
        eprintln!(
            "{group}: {hit}/{} recognised; by reason {tally:?}",
            files.len()
        );
        for m in &missed {
            let why = KNOWN_MISSES.iter().find(|(file, _)| m.contains(file));
            eprintln!(
                "{m}{}",
                why.map(|(_, w)| format!(" (known: {w})"))
                    .unwrap_or_default()
            );
        }
        let unexpected: Vec<&String> = missed
            .iter()
            .filter(|m| !KNOWN_MISSES.iter().any(|(file, _)| m.contains(file)))
            .collect();
        assert!(
            unexpected.is_empty(),
            "{group}: not recognised:\n{unexpected:#?}"
        );
    }
}

#[test]
fn corpus_negatives_are_human() {
    let Some(root) = corpus_dir() else {
        eprintln!("note: ../shared/corpus not found; corpus negative test skipped");
        return;
    };
    // The Latvian apology is a person's mail. (perl-bounceparser's negative is an Exim bounce
    // that carries Auto-Submitted: it is "not an auto-reply" there, but still a robot here.)
    let path = root.join("autoreplies/bounce_email/negative/tt_1234241664.txt");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("note: {} missing; skipped", path.display());
        return;
    };
    let mail = mail_from(&String::from_utf8_lossy(&bytes));
    assert_eq!(classify(&mail), None, "{mail:?}");
}
