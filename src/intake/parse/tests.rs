//! Unit tests of the parser: table cases built inline, and the whole corpus without a panic.
use super::{content_hash, ids_in, parse, parse_headers_only, ParseError};
use crate::model::{EmailAddress, InboundMail};

fn parsed(raw: &[u8]) -> InboundMail {
    match parse(raw) {
        Ok(mail) => mail,
        Err(error) => panic!("parse failed: {error}"),
    }
}

fn email(text: &str) -> EmailAddress {
    EmailAddress::parse(text).expect("test address")
}

const PLAIN: &[u8] = b"Return-Path: <ivan@example.org>\r\n\
From: =?UTF-8?B?0IbQstCw0L0g0J/QtdGC0YDQtdC90LrQvg==?= <Ivan@Example.ORG>\r\n\
To: Support <support@example.com>, other@example.com\r\n\
Cc: boss@example.com\r\n\
Subject: Printer\r\n\tbroken   again\r\n\
Date: Tue, 01 Apr 2025 10:00:00 +0300\r\n\
Message-ID: <abc.123@mail.example.org>\r\n\
In-Reply-To: <x1@support.example.com>\r\n\
References: <x0@support.example.com>\r\n <x1@support.example.com>\r\n\
Authentication-Results: mx.example.com;\r\n dkim=pass header.d=example.org\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello,\r\nthe printer is broken.\r\n\r\n\r\n";

#[test]
fn plain_mail_header_facts() {
    let mail = parsed(PLAIN);
    assert_eq!(mail.message_id.as_deref(), Some("abc.123@mail.example.org"));
    assert_eq!(mail.dedupe_key, "abc.123@mail.example.org");
    let from = mail.from.clone().expect("from");
    assert_eq!(from.email.as_str(), "ivan@example.org");
    assert_eq!(from.name, "Іван Петренко");
    assert_eq!(mail.sender, mail.from);
    assert_eq!(
        mail.recipients,
        [
            email("support@example.com"),
            email("other@example.com"),
            email("boss@example.com")
        ]
    );
    assert_eq!(mail.subject, "Printer broken again");
    assert_eq!(mail.text, "Hello,\nthe printer is broken.");
    assert_eq!(mail.in_reply_to, ["x1@support.example.com"]);
    assert_eq!(
        mail.references,
        ["x0@support.example.com", "x1@support.example.com"]
    );
    assert_eq!(mail.date, Some(1_743_490_800));
    assert_eq!(
        mail.authentication_results,
        ["mx.example.com; dkim=pass header.d=example.org"]
    );
    assert!(mail.attachments.is_empty());
    assert_eq!(mail.bounce, None);
    assert!(!mail.signals.null_return_path);
    assert_eq!(mail.signals.from_address, Some(email("ivan@example.org")));
}

#[test]
fn body_text_and_subject_decoding() {
    let cases: &[(&str, &[u8], &str, &str)] = &[
        (
            "html only",
            b"From: a@example.org\nSubject: h\nContent-Type: text/html; charset=utf-8\n\n\
<html><head><style>p{}</style></head><body><div>Hello&nbsp;team,</div><div>Line&nbsp;2 &amp; more</div></body></html>\n",
            "h",
            "Hello team,\nLine 2 & more",
        ),
        (
            "alternative prefers text/plain",
            b"From: a@example.org\nSubject: alt\nContent-Type: multipart/alternative; boundary=b\n\n\
--b\nContent-Type: text/plain\n\nplain words\n--b\nContent-Type: text/html\n\n<p>html words</p>\n--b--\n",
            "alt",
            "plain words",
        ),
        (
            "windows-1251 8bit body",
            b"From: a@example.org\nSubject: cp\nContent-Type: text/plain; charset=windows-1251\nContent-Transfer-Encoding: 8bit\n\n\xcf\xf0\xe8\xe2\xb3\xf2\n",
            "cp",
            "Привіт",
        ),
        (
            "koi8-u quoted-printable body",
            b"From: a@example.org\nSubject: koi\nContent-Type: text/plain; charset=koi8-u\nContent-Transfer-Encoding: quoted-printable\n\n=F0=D2=C9=D7=A6=D4, =F3=D7=A6=D4\n",
            "koi",
            "Привіт, Світ",
        ),
        (
            "utf-8 base64 encoded-word subject",
            b"From: a@example.org\nSubject: =?UTF-8?B?0JfQsNC/0LjRgiDQv9GA0L4g0L7Qv9C70LDRgtGD?=\n\nx\n",
            "Запит про оплату",
            "x",
        ),
        (
            "windows-1251 Q encoded-word subject with tag",
            b"From: a@example.org\nSubject: Re: [#AZA-DMP-AJ8S] =?windows-1251?Q?=CF=F0=E8=E2=B3=F2?=\n\nx\n",
            "Re: [#AZA-DMP-AJ8S] Привіт",
            "x",
        ),
        (
            "CR-only line ends",
            b"From: a@example.org\rSubject: old mac\r\rline one\rline two\r",
            "old mac",
            "line one\nline two",
        ),
        (
            "mbox envelope line",
            b"From a@example.org Mon Jan  1 00:00:00 2024\nFrom: a@example.org\nSubject: mbox\n\nbody\n",
            "mbox",
            "body",
        ),
        ("no body", b"From: a@example.org\nSubject: empty\n", "empty", ""),
    ];
    for (label, raw, subject, text) in cases {
        let mail = parsed(raw);
        assert_eq!(&mail.subject, subject, "{label}");
        assert_eq!(&mail.text, text, "{label}");
    }
}

/// Label, raw mail, expected sender address, expected From address.
type SenderCase<'a> = (&'a str, &'a [u8], Option<&'a str>, Option<&'a str>);

#[test]
fn sender_precedence() {
    let cases: &[SenderCase<'_>] = &[
        (
            "reply-to wins",
            b"From: A <a@example.org>\nReply-To: B <b@example.org>\nSubject: s\n\nx\n",
            Some("b@example.org"),
            Some("a@example.org"),
        ),
        (
            "broken reply-to falls back to from",
            b"From: A <a@example.org>\nReply-To: not an address\nSubject: s\n\nx\n",
            Some("a@example.org"),
            Some("a@example.org"),
        ),
        (
            "no from",
            b"To: s@example.com\nSubject: s\n\nx\n",
            None,
            None,
        ),
        (
            "group takes first address",
            b"From: Team: x@example.org, y@example.org;\nSubject: s\n\nx\n",
            Some("x@example.org"),
            Some("x@example.org"),
        ),
    ];
    for (label, raw, sender, from) in cases {
        let mail = parsed(raw);
        let sender_text = mail.sender.as_ref().map(|m| m.email.as_str());
        let from_text = mail.from.as_ref().map(|m| m.email.as_str());
        assert_eq!(sender_text, *sender, "{label}");
        assert_eq!(from_text, *from, "{label}");
    }
    let same = parsed(b"From: Anna <a@example.org>\nReply-To: a@example.org\n\nx\n");
    assert_eq!(same.sender.map(|m| m.name), Some("Anna".to_string()));
}

#[test]
fn missing_message_id_uses_stable_content_hash() {
    let raw = b"From: a@example.org\nSubject: no id\n\nbody\n";
    let first = parsed(raw);
    assert_eq!(first.message_id, None);
    assert!(first.dedupe_key.starts_with("sha256:"));
    assert_eq!(first.dedupe_key.len(), "sha256:".len() + 64);
    assert_eq!(first.dedupe_key, parsed(raw).dedupe_key);
    assert_eq!(first.dedupe_key, content_hash(raw));
    let headers_only = parse_headers_only(raw).expect("headers");
    assert_eq!(headers_only.dedupe_key, first.dedupe_key);
    let empty_id = parsed(b"From: a@example.org\nMessage-ID:  <> \n\nbody\n");
    assert_eq!(empty_id.message_id, None);
}

#[test]
fn attachments_are_listed_with_names_types_and_bytes() {
    let raw = b"From: a@example.org\nSubject: files\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n\
--XX\nContent-Type: text/plain; charset=utf-8\n\nSee attached.\n\
--XX\nContent-Type: application/PDF; name=\"ignored.pdf\"\nContent-Disposition: attachment; filename=\"C:\\\\Users\\\\me\\\\invoice.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQgZmFrZQ==\n\
--XX\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n\
--XX\nContent-Type: text/plain; charset=windows-1251; name=\"=?UTF-8?B?0JfQstGW0YIudHh0?=\"\nContent-Disposition: attachment\nContent-Transfer-Encoding: base64\n\nx+Kz8iwg6uKz8uXt/A==\n\
--XX--\n";
    let mail = parsed(raw);
    assert_eq!(mail.text, "See attached.");
    let summary: Vec<(&str, &str, usize)> = mail
        .attachments
        .iter()
        .map(|a| (a.name.as_str(), a.content_type.as_str(), a.content.len()))
        .collect();
    assert_eq!(
        summary,
        [
            ("invoice.pdf", "application/pdf", 13),
            ("attachment-2.png", "image/png", 8),
            ("Звіт.txt", "text/plain", 13),
        ]
    );
    assert_eq!(mail.attachments[0].content, b"%PDF-1.4 fake");
    // The text attachment keeps its original windows-1251 bytes.
    assert_eq!(mail.attachments[2].content.first(), Some(&0xc7));
}

const DSN: &[u8] = b"Return-Path: <>\n\
From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\n\
To: support@example.com\n\
Subject: Undelivered Mail Returned to Sender\n\
Auto-Submitted: auto-replied\n\
Message-ID: <dsn.1@mx.example.com>\n\
Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"RPT\"\n\n\
--RPT\nContent-Type: text/plain\n\nI'm sorry to have to inform you that your message could not be delivered.\n\n\
--RPT\nContent-Type: message/delivery-status\n\n\
Reporting-MTA: dns; mx.example.com\n\n\
Final-Recipient: rfc822; nobody@example.org\n\
Original-Recipient: rfc822;Nobody@Example.org\n\
Action: failed\n\
Status: 5.1.1\n\
Diagnostic-Code: smtp; 550 5.1.1 user unknown\n\n\
--RPT\nContent-Type: message/rfc822\n\n\
From: support@example.com\nTo: nobody@example.org\nSubject: [#AZA-DMP-AJ8S] Ticket received\n\
Message-ID: <pd.test@support.example.com>\n\nHello\n\
--RPT--\n";

#[test]
fn delivery_status_notification() {
    let mail = parsed(DSN);
    let bounce = mail.bounce.clone().expect("bounce");
    assert_eq!(bounce.status_codes, ["5.1.1"]);
    assert_eq!(bounce.recipients, [email("nobody@example.org")]);
    assert_eq!(bounce.original_message_ids, ["pd.test@support.example.com"]);
    assert!(bounce.is_permanent());
    assert_eq!(mail.signals.report_type.as_deref(), Some("delivery-status"));
    assert!(mail.signals.null_return_path);
    assert_eq!(mail.signals.auto_submitted.as_deref(), Some("auto-replied"));
    assert!(mail.text.starts_with("I'm sorry"));
    assert!(mail
        .attachments
        .iter()
        .any(|a| a.content_type == "message/rfc822"));
    // Headers only: the signals are there, the bounce body is not read.
    let head = parse_headers_only(DSN).expect("headers");
    assert_eq!(head.signals.report_type.as_deref(), Some("delivery-status"));
    assert_eq!(head.bounce, None);
    assert_eq!(head.text, "");
}

#[test]
fn non_dsn_bounce_from_mailer_daemon() {
    let raw = b"From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n\n\
Hi. This is the qmail-send program at mx.example.net.\n\
<nobody@example.org>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n\
--- Below this line is a copy of the message.\n\n\
Message-ID: <pd.qmail@support.example.com>\nSubject: hi\n";
    let bounce = parsed(raw).bounce.expect("bounce");
    assert_eq!(bounce.status_codes, ["5.1.1"]);
    assert_eq!(
        bounce.original_message_ids,
        ["pd.qmail@support.example.com"]
    );
    let human = parsed(b"From: someone@example.org\nSubject: x\n\nMessage-ID: <a@b>\n5.1.1\n");
    assert_eq!(human.bounce, None);
}

#[test]
fn auto_reply_signals() {
    let raw = b"Return-Path: < >\nFrom: a@example.org\nAuto-Submitted:  Auto-Replied \n\
Precedence: Bulk\nX-Autoreply: yes\nX-Autorespond: x\nX-Auto-Response-Suppress: All\n\
List-Id: <l.example.org>\nList-Unsubscribe: <mailto:u@example.org>\nSubject: Automatic reply: x\n\nx\n";
    let signals = parsed(raw).signals;
    assert_eq!(signals.auto_submitted.as_deref(), Some("auto-replied"));
    assert_eq!(signals.precedence.as_deref(), Some("bulk"));
    assert!(signals.x_autoreply && signals.x_autorespond);
    assert_eq!(signals.x_auto_response_suppress.as_deref(), Some("all"));
    assert!(signals.list_id && signals.list_unsubscribe && signals.null_return_path);
    assert_eq!(signals.report_type, None);
    let quiet = parsed(b"From: a@example.org\nX-Autoreply: no\n\nx\n").signals;
    assert!(!quiet.x_autoreply && !quiet.null_return_path);
}

#[test]
fn postfix_pipe_writes_the_null_sender_as_mailer_daemon() {
    let null = |return_path: &str| {
        let raw = format!("Return-Path: {return_path}\nFrom: a@example.org\nSubject: x\n\nx\n");
        parsed(raw.as_bytes()).signals.null_return_path
    };
    assert!(null("<MAILER-DAEMON>"));
    assert!(null("<mailer-daemon>"));
    assert!(null("<>"));
    // A real mailbox called mailer-daemon is a sender, not the null path.
    assert!(!null("<MAILER-DAEMON@mx.example.org>"));
    assert!(!null("<ivan@example.org>"));
}

#[test]
fn message_ids_keep_order_and_drop_repeats() {
    let table: &[(&str, &[&str])] = &[
        ("<a@x> <b@x>\t<a@x>  < c @x >", &["a@x", "b@x", "c@x"]),
        ("a@x, b@x a@x", &["a@x", "b@x"]),
        ("<> <a@x", &["a@x"]),
        ("<<a@x>", &["<a@x"]),
    ];
    for (value, expected) in table {
        assert_eq!(ids_in(value), *expected, "{value:?}");
    }
}

/// Every ID used to be compared with all earlier ones: 200,000 of them ran for minutes.
/// No clock is read; under the old code this simply does not finish in reasonable time.
#[test]
fn many_references_are_linear() {
    let value: String = (0..200_000)
        .map(|i| format!("<{}@x> ", i % 100_000))
        .collect();
    let ids = ids_in(&value);
    assert_eq!(ids.len(), 100_000);
    assert_eq!(ids.first().map(String::as_str), Some("0@x"));
    assert_eq!(ids.last().map(String::as_str), Some("99999@x"));
}

/// Repeated recipients used to be found with a `contains` per address (40,000 took seconds,
/// 200,000 minutes). No clock is read; under the old code this does not finish in time.
#[test]
fn many_recipients_are_linear_and_repeats_dropped() {
    let to: String = (0..200_000)
        .map(|i| format!("u{}@x.example, ", i % 100_000))
        .collect();
    let raw = format!("From: a@b.example\r\nTo: {to}\r\nCc: U7@X.example\r\nSubject: x\r\n\r\nhi");
    let mail = parsed(raw.as_bytes());
    assert_eq!(mail.recipients.len(), 100_000);
    assert_eq!(mail.recipients.first(), Some(&email("u0@x.example")));
    assert_eq!(mail.recipients.last(), Some(&email("u99999@x.example")));
}

#[test]
fn bad_input_is_an_error_or_a_best_effort_mail_never_a_panic() {
    assert_eq!(parse(b""), Err(ParseError::NotAMail));
    assert_eq!(parse_headers_only(b""), Err(ParseError::NotAMail));
    assert_eq!(parse(b"\n\n\n"), Err(ParseError::NotAMail));
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = parse(&junk);
    let _ = parse_headers_only(&junk);
    let truncated = b"From: a@example.org\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: message/rfc822\n\nFrom: b@";
    let _ = parse(truncated);
    let mut huge = b"From: a@example.org\nSubject: ".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 600 * 1024));
    huge.extend_from_slice(b"\n\nbody\n");
    let _ = parse(&huge);
    let _ = parse_headers_only(&huge);
    let eight_bit = parse(b"From: \xc8\xe2\xe0\xed <a@example.org>\nSubject: \xcf\xf0\xe8\n\nx\n");
    assert!(eight_bit.is_ok());
}

#[test]
fn corpus_never_panics() {
    let root = std::path::Path::new("/work/shared/corpus");
    if !root.is_dir() {
        println!("corpus directory {} missing; skipping", root.display());
        return;
    }
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read corpus dir") {
            let path = entry.expect("dir entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.is_dir() {
                dirs.push(path);
            } else if name != "README.md" && name != ".gitattributes" && !name.ends_with(".yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let (mut ok, mut rejected) = (0usize, 0usize);
    for path in &files {
        let raw = std::fs::read(path).expect("read corpus file");
        match parse(&raw) {
            Ok(_) => ok += 1,
            Err(error) => {
                println!("{}: {error}", path.display());
                rejected += 1;
            }
        }
        let _ = parse_headers_only(&raw);
    }
    println!(
        "corpus: {} files, {ok} parsed, {rejected} rejected",
        files.len()
    );
    assert!(files.len() > 200, "found only {} corpus files", files.len());
}
