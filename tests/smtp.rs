//! The SMTP transport against a fake server on 127.0.0.1: a successful send, 5xx → permanent,
//! 4xx → transient, refused/timeout/TLS/AUTH trouble → transient with the right fix-it hint,
//! connection reuse, pipelining and one write per body (no delayed-ACK stall), and `postdesk send-test-email` exit codes through the real binary.

mod fake_smtp;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fake_smtp::{Behaviour, FakeSmtp};
use postdesk::config::{load_str, Config};
use postdesk::outbound::diagnose::{explain, Cause, SendFailure};
use postdesk::outbound::transport::{MailTransport, SmtpSink};
use postdesk::outbound::worker::SendError;

const PASSWORD: &str = "hunter2-very-secret";

fn smtp_toml(port: u16, extra: &str) -> String {
    format!(
        "[general]\nsupport_address = \"support@example.com\"\nsupport_name = \"Example Support\"\n\
         data_dir = \"var\"\n\n[smtp]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\n{extra}"
    )
}

fn config(port: u16, extra: &str) -> Config {
    let mut extra = extra.to_string();
    if !extra.contains("tls =") {
        extra.push_str("\ntls = \"none\"");
    }
    if !extra.contains("timeout =") {
        extra.push_str("\ntimeout = \"2s\"");
    }
    load_str(&smtp_toml(port, &extra), Path::new("/tmp"), Vec::new()).expect("config")
}

fn send(config: &Config) -> Result<(), SendFailure> {
    let message = postdesk::app::test_email(config, "olena@example.com", &[7u8; 48]).expect("mail");
    SmtpSink::new(&config.smtp)
        .expect("transport")
        .send_diagnosed(&message)
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn a_mail_is_delivered_and_the_connection_reused() {
    let server = FakeSmtp::start(Behaviour::default());
    let config = config(server.port, "");
    let sink = SmtpSink::new(&config.smtp).expect("transport");
    for _ in 0..2 {
        let message =
            postdesk::app::test_email(&config, "olena@example.com", &[7u8; 48]).expect("mail");
        sink.send(&message).expect("sent");
    }
    let seen = server.seen.lock().expect("lock");
    assert_eq!(seen.messages.len(), 2);
    assert_eq!(seen.connections, 1, "the pool should reuse the connection");
    let mail = &seen.messages[0];
    assert!(mail.contains("Subject: postdesk test email"), "{mail}");
    assert!(mail.contains("Message-ID: <"), "{mail}");
    assert!(mail.contains("SMTP 127.0.0.1"), "{mail}");
    assert!(seen
        .commands
        .iter()
        .any(|c| c == "RCPT TO:<olena@example.com>"));
}

/// Sends `count` mails through one sink to a fresh fake server and returns what it saw.
fn send_many(behaviour: Behaviour, count: usize) -> fake_smtp::Seen {
    let server = FakeSmtp::start(behaviour);
    let config = config(server.port, "");
    let sink = SmtpSink::new(&config.smtp).expect("transport");
    for _ in 0..count {
        let message =
            postdesk::app::test_email(&config, "olena@example.com", &[7u8; 48]).expect("mail");
        sink.send(&message).expect("sent");
    }
    drop(sink);
    let seen = std::mem::take(&mut *server.seen.lock().expect("lock"));
    seen
}

fn median(mut waits: Vec<Duration>) -> Duration {
    waits.sort();
    waits[waits.len() / 2]
}

/// The body and its closing `.` used to go out in two writes: the second waited for the
/// server's delayed ACK of the first (Nagle), about 40 ms per mail. The fake server times
/// each DATA from its `354` to the closing `.`; with one write that is a loopback hop.
#[test]
fn mails_on_one_connection_do_not_wait_for_delayed_acks() {
    for pipelining in [true, false] {
        let seen = send_many(
            Behaviour {
                pipelining,
                ..Behaviour::default()
            },
            20,
        );
        assert_eq!(seen.messages.len(), 20);
        assert_eq!(seen.connections, 1, "one connection for all mails");
        let wait = median(seen.data_waits.clone());
        assert!(
            wait < Duration::from_millis(20),
            "pipelining {pipelining}: DATA took {wait:?} (median), waits {:?}",
            seen.data_waits
        );
    }
}

#[test]
fn the_envelope_is_pipelined_only_where_the_server_offers_it() {
    let offered = send_many(
        Behaviour {
            pipelining: true,
            ..Behaviour::default()
        },
        3,
    );
    assert_eq!(offered.pipelined, vec![true; 3], "{:?}", offered.commands);
    let not_offered = send_many(Behaviour::default(), 3);
    assert_eq!(
        not_offered.pipelined,
        vec![false; 3],
        "{:?}",
        not_offered.commands
    );
    // Same commands, same order, either way.
    let transaction = |seen: &fake_smtp::Seen| {
        seen.commands
            .iter()
            .filter(|c| c.starts_with("MAIL") || c.starts_with("RCPT") || c == &"DATA")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(transaction(&offered), transaction(&not_offered));
    assert_eq!(transaction(&offered).len(), 9);
}

#[test]
fn the_body_is_dot_stuffed_and_arrives_intact() {
    let server = FakeSmtp::start(Behaviour {
        pipelining: true,
        ..Behaviour::default()
    });
    let config = config(server.port, "");
    let sink = SmtpSink::new(&config.smtp).expect("transport");
    let message = lettre::Message::builder()
        .from("support@example.com".parse().expect("from"))
        .to("olena@example.com".parse().expect("to"))
        .subject("dots")
        .body(".\r\n..two\r\nend".to_string())
        .expect("message");
    sink.send(&message).expect("sent");
    let seen = server.seen.lock().expect("lock");
    let mail = &seen.messages[0];
    // The fake server keeps the stuffed form: a leading dot doubled, nothing else.
    assert!(mail.contains("\r\n\r\n..\r\n...two\r\nend\r\n"), "{mail:?}");
}

#[test]
fn a_rejected_recipient_in_a_pipelined_group_is_permanent_and_sends_no_body() {
    let server = FakeSmtp::start(Behaviour {
        rcpt_reply: Some("550 5.1.1 no such user"),
        pipelining: true,
        ..Behaviour::default()
    });
    let failure = send(&config(server.port, "")).expect_err("rejected");
    assert_eq!(failure.cause, Cause::Rejected);
    assert_eq!(
        failure.error,
        SendError::Permanent("550 5.1.1 no such user".into())
    );
    assert!(server.seen.lock().expect("lock").messages.is_empty());
}

#[test]
fn a_connection_the_server_closed_meanwhile_is_replaced() {
    let server = FakeSmtp::start(Behaviour {
        pipelining: true,
        ..Behaviour::default()
    });
    let config = config(server.port, "");
    let sink = SmtpSink::new(&config.smtp).expect("transport");
    let mail =
        || postdesk::app::test_email(&config, "olena@example.com", &[7u8; 48]).expect("mail");
    sink.send(&mail()).expect("first");
    server.close_connections();
    sink.send(&mail()).expect("second, on a new connection");
    let seen = server.seen.lock().expect("lock");
    assert_eq!(seen.messages.len(), 2);
    assert_eq!(seen.connections, 2);
}

#[test]
fn a_5xx_answer_is_permanent_with_the_server_answer() {
    let server = FakeSmtp::start(Behaviour {
        rcpt_reply: Some("550 5.1.1 no such user"),
        ..Behaviour::default()
    });
    let failure = send(&config(server.port, "")).expect_err("rejected");
    assert_eq!(failure.cause, Cause::Rejected);
    assert_eq!(
        failure.error,
        SendError::Permanent("550 5.1.1 no such user".into())
    );
}

#[test]
fn a_4xx_answer_is_transient() {
    let server = FakeSmtp::start(Behaviour {
        rcpt_reply: Some("451 4.3.0 try later"),
        ..Behaviour::default()
    });
    let failure = send(&config(server.port, "")).expect_err("deferred");
    assert_eq!(failure.cause, Cause::Deferred);
    assert_eq!(
        failure.error,
        SendError::Transient("451 4.3.0 try later".into())
    );
}

#[test]
fn a_closed_port_is_transient_and_says_nothing_listens() {
    let port = closed_port();
    let config = config(port, "");
    let failure = send(&config).expect_err("refused");
    assert_eq!(failure.cause, Cause::Refused);
    assert!(matches!(failure.error, SendError::Transient(_)));
    let hint = explain(&failure, &config.smtp);
    assert!(
        hint.contains(&format!("nothing listens on 127.0.0.1:{port}")),
        "{hint}"
    );
}

#[test]
fn a_rejected_login_is_transient_and_never_shows_the_password() {
    let server = FakeSmtp::start(Behaviour {
        auth_reply: Some("535 5.7.8 authentication failed"),
        ..Behaviour::default()
    });
    let extra = format!("username = \"support@example.com\"\npassword = \"{PASSWORD}\"");
    let config = config(server.port, &extra);
    let failure = send(&config).expect_err("auth rejected");
    assert_eq!(failure.cause, Cause::AuthRejected);
    assert!(matches!(failure.error, SendError::Transient(_)));
    let hint = explain(&failure, &config.smtp);
    assert!(
        hint.contains("check [smtp] username and password_file"),
        "{hint}"
    );
    assert!(!hint.contains(PASSWORD) && !format!("{failure:?}").contains(PASSWORD));
}

#[test]
fn tls_mismatches_get_their_hints() {
    let server = FakeSmtp::start(Behaviour::default());
    let implicit = config(server.port, "tls = \"implicit\"");
    let failure = send(&implicit).expect_err("plain server");
    assert_eq!(failure.cause, Cause::NotTlsOnConnect, "{failure:?}");
    assert!(explain(&failure, &implicit.smtp).contains("does not speak TLS on connect"));

    let starttls = config(server.port, "tls = \"starttls\"");
    let failure = send(&starttls).expect_err("no STARTTLS");
    assert_eq!(failure.cause, Cause::NoStartTls, "{failure:?}");
    assert!(explain(&failure, &starttls.smtp).contains("set tls = \"implicit\""));
}

#[test]
fn a_silent_server_times_out() {
    let server = FakeSmtp::start(Behaviour {
        silent: true,
        ..Behaviour::default()
    });
    let config = config(server.port, "timeout = \"1s\"");
    let failure = send(&config).expect_err("timeout");
    assert_eq!(failure.cause, Cause::Timeout, "{failure:?}");
    assert!(explain(&failure, &config.smtp).contains("no answer from 127.0.0.1"));
}

fn run_send_test_email(port: u16) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, smtp_toml(port, "tls = \"none\"\ntimeout = \"2s\"\n"))
        .expect("write config");
    Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(&path)
        .args(["send-test-email", "olena@example.com"])
        .env_remove("POSTDESK_CONFIG")
        .output()
        .expect("run postdesk")
}

#[test]
fn send_test_email_exits_0_on_success_and_1_with_a_hint() {
    let server = FakeSmtp::start(Behaviour::default());
    let ok = run_send_test_email(server.port);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("Test email sent to olena@example.com via SMTP 127.0.0.1"),
        "{stdout}"
    );
    assert_eq!(server.seen.lock().expect("lock").messages.len(), 1);

    let rejecting = FakeSmtp::start(Behaviour {
        rcpt_reply: Some("550 5.1.1 no such user"),
        ..Behaviour::default()
    });
    let failed = run_send_test_email(rejecting.port);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("550 5.1.1 no such user"), "{stderr}");

    let port = closed_port();
    let refused = run_send_test_email(port);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("nothing listens on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn ca_file_is_resolved_and_must_be_readable() {
    let config = config(25, "tls = \"starttls\"\nca_file = \"certs/ca.pem\"");
    assert_eq!(
        config.smtp.ca_file.as_deref(),
        Some(Path::new("/tmp/certs/ca.pem"))
    );
    let error = SmtpSink::new(&config.smtp).err().expect("missing ca_file");
    assert!(
        format!("{error:#}").contains("[smtp] ca_file /tmp/certs/ca.pem"),
        "{error:#}"
    );
}
