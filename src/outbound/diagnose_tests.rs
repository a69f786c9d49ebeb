//! Tests for the failure classification and the fix-it hints. Failures that need a server
//! (4xx/5xx answers, TLS and AUTH trouble) are driven through a fake SMTP server in
//! `tests/smtp.rs`; here: the hints themselves, TLS causes and a real refused connection.

use std::net::TcpListener;
use std::path::Path;

use lettre::transport::smtp::SmtpTransport;
use lettre::{Message, Transport};

use super::*;
use crate::config::load_str;

const PASSWORD: &str = "hunter2-very-secret";

fn smtp(extra: &str) -> SmtpConfig {
    smtp_of("smtp", extra)
}

fn smtp_of(kind: &str, extra: &str) -> SmtpConfig {
    let text = format!(
        "[general]\nsupport_address = \"support@example.com\"\n\n[smtp]\nkind = \"{kind}\"\n\
         host = \"mail.example.com\"\nusername = \"support@example.com\"\npassword = \"{PASSWORD}\"\n{extra}"
    );
    load_str(&text, Path::new("/tmp"), Vec::new())
        .expect("config")
        .smtp
}

fn failure(cause: Cause, detail: &str) -> SendFailure {
    SendFailure {
        cause,
        error: SendError::Transient(detail.into()),
    }
}

#[test]
fn every_cause_has_a_hint_naming_what_to_fix() {
    let starttls = smtp("tls = \"starttls\"");
    let cases = [
        (Cause::Refused, "nothing listens on mail.example.com:587; check [smtp] host and port"),
        (Cause::Unreachable, "check [smtp] host"),
        (Cause::Timeout, "no answer from mail.example.com:587 within 30s"),
        (Cause::NotTlsOnConnect, "port 587 usually wants tls = \"starttls\", port 465 tls = \"implicit\""),
        (Cause::NoStartTls, "does not offer STARTTLS; set tls = \"implicit\" or check the port"),
        (Cause::Untrusted("it has expired".into()), "not trusted for mail.example.com: it has expired; fix the certificate or set [smtp] ca_file"),
        (Cause::AuthRejected, "rejected the username/password (detail): check [smtp] username and password_file"),
        (Cause::NoAuthMechanism, "offers no login method"),
        (Cause::Rejected, "refused the mail permanently: detail"),
        (Cause::Deferred, "try again later: detail"),
        (Cause::Other, "mail.example.com:587 failed: detail"),
    ];
    for (cause, expected) in cases {
        let text = explain(&failure(cause.clone(), "detail"), &starttls);
        assert!(text.contains(expected), "{cause:?}: {text}");
        assert!(
            !text.contains(PASSWORD),
            "{cause:?} leaks the password: {text}"
        );
    }
}

#[test]
fn a_timeout_on_465_without_implicit_tls_suggests_it() {
    let config = smtp("tls = \"starttls\"\nport = 465\ntimeout = \"5s\"");
    let text = explain(&failure(Cause::Timeout, "timed out"), &config);
    assert!(text.contains("within 5s"), "{text}");
    assert!(text.contains("set tls = \"implicit\""), "{text}");
    let implicit = smtp("tls = \"implicit\"");
    let text = explain(&failure(Cause::Timeout, "timed out"), &implicit);
    assert!(!text.contains("set tls"), "{text}");
}

#[test]
fn file_and_sendmail_hints_name_their_keys() {
    let sendmail = smtp_of("sendmail", "command = \"/no/such/sendmail\"");
    let text = explain(&failure(Cause::Sendmail, "exit 1"), &sendmail);
    assert!(
        text.contains("check [smtp] command (now /no/such/sendmail)"),
        "{text}"
    );
    let file = smtp_of("file", "dir = \"/srv/outbox\"");
    let text = explain(&failure(Cause::Other, "denied"), &file);
    assert!(text.contains("check [smtp] dir"), "{text}");
}

#[test]
fn tls_errors_map_to_their_causes() {
    use rustls::{CertificateError, Error, InvalidMessage};
    let untrusted = tls_cause(&Error::InvalidCertificate(CertificateError::UnknownIssuer));
    assert_eq!(
        untrusted,
        Cause::Untrusted(
            "it is signed by an unknown authority (self-signed or a private CA)".into()
        )
    );
    let expired = tls_cause(&Error::InvalidCertificate(CertificateError::Expired));
    assert_eq!(expired, Cause::Untrusted("it has expired".into()));
    let plain = tls_cause(&Error::InvalidMessage(InvalidMessage::InvalidContentType));
    assert_eq!(plain, Cause::NotTlsOnConnect);
    assert_eq!(tls_cause(&Error::HandshakeNotComplete), Cause::Other);
}

#[test]
fn send_errors_without_a_cause_keep_their_kind() {
    let permanent = SendFailure::from(SendError::Permanent("550 no".into()));
    assert_eq!(permanent.cause, Cause::Rejected);
    let transient = SendFailure::from(SendError::Transient("disk full".into()));
    assert_eq!(transient.cause, Cause::Other);
    assert_eq!(transient.error, SendError::Transient("disk full".into()));
}

#[test]
fn a_closed_port_is_refused_and_transient() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let transport = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    let message = Message::builder()
        .from("support@example.com".parse().expect("from"))
        .to("olena@example.com".parse().expect("to"))
        .body(String::from("hi"))
        .expect("message");
    let error = transport.send(&message).expect_err("nothing listens");
    let failure = classify_smtp(&error, Some(PASSWORD));
    assert_eq!(failure.cause, Cause::Refused, "{error:?}");
    assert!(matches!(failure.error, SendError::Transient(_)));
}
