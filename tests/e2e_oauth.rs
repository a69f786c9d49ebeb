//! XOAUTH2 end to end: the real binary logs in to `oauthdesk@example.com` through Dovecot's
//! oauth2 passdb, which asks this test's token-introspection endpoint (RFC 7662, on the port
//! `start.sh` exported as `POSTDESK_OAUTH_INTROSPECTION_PORT`) whether a token is valid. The
//! token comes from `oauth2_token_command = "cat FILE"`; when the endpoint stops accepting it
//! ("expired") and the connection drops, the daemon runs the command again and carries on
//! with the new token. Tokens never reach the daemon's log.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::mailstack::{nonce, stack, subject_has, wait_for};
use common::{mail, wait_until, Daemon, Scratch};

/// A minimal RFC 7662 introspection endpoint: `POST /introspect` with `token=…` answers
/// `{"active":true,"username":…}` for the tokens in `accepted`, `{"active":false}` otherwise,
/// and records every token it was asked about.
struct Introspection {
    accepted: Arc<Mutex<HashSet<String>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Introspection {
    fn serve(port: u16, username: &'static str) -> Introspection {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind introspection port");
        let accepted = Arc::new(Mutex::new(HashSet::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (accepted2, seen2) = (accepted.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let trimmed = line.trim_end();
                    if trimmed.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = trimmed.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let body = String::from_utf8_lossy(&body).to_string();
                let token = body
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("token="))
                    .unwrap_or("")
                    .to_string();
                let active = accepted2.lock().expect("lock").contains(&token);
                seen2.lock().expect("lock").push(token);
                let answer = if active {
                    format!(r#"{{"active":true,"username":"{username}"}}"#)
                } else {
                    r#"{"active":false}"#.to_string()
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        Introspection { accepted, seen }
    }

    fn accept_only(&self, token: &str) {
        let mut accepted = self.accepted.lock().expect("lock");
        accepted.clear();
        accepted.insert(token.to_string());
    }

    fn seen(&self, token: &str) -> usize {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|t| *t == token)
            .count()
    }
}

#[test]
fn xoauth2_login_and_a_new_token_after_expiry() {
    let Some(stack) = stack("oauth_xoauth2") else {
        return;
    };
    let port: u16 = std::env::var("POSTDESK_OAUTH_INTROSPECTION_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("POSTDESK_OAUTH_INTROSPECTION_PORT (tests/mailstack/start.sh exports it)");
    let conf = std::env::var("POSTDESK_DOVECOT_CONF").expect("POSTDESK_DOVECOT_CONF");
    let server = Introspection::serve(port, "oauthdesk@example.com");
    let run = nonce();
    let token_a = format!("tokA{run}");
    let token_b = format!("tokB{run}");
    server.accept_only(&token_a);

    let token_dir = tempfile::tempdir().expect("dir");
    let token_file = token_dir.path().join("token");
    std::fs::write(&token_file, format!("{token_a}\n")).expect("write token");
    let config = stack
        .imap_config("en")
        .replace(
            "username = \"support@example.com\"\npassword = \"secret-support\"\n",
            &format!(
                "username = \"oauthdesk@example.com\"\noauth2_token_command = \"cat '{}'\"\n",
                token_file.display()
            ),
        )
        .replace(
            "support_address = \"support@example.com\"",
            "support_address = \"oauthdesk@example.com\"",
        );
    assert!(config.contains("oauth2_token_command"), "{config}");
    assert!(!config.contains("password"), "{config}");
    let scratch = Scratch::with_config(&config);
    let daemon = Daemon::start(&scratch);
    let customer = format!("customer1+oauth{run}@example.com");

    // Token A: logged in, a mail becomes a ticket and the customer hears back.
    let first = format!("OAuth first {run}");
    stack.send(
        &customer,
        "oauthdesk@example.com",
        &mail(
            &customer,
            &first,
            &format!("{}@c.example", nonce()),
            "",
            "Hello over XOAUTH2.",
        ),
    );
    wait_for("customer1@example.com", |m| {
        subject_has(m, &format!("Ticket received: {first}"))
    });
    assert!(server.seen(&token_a) >= 1, "Dovecot asked about token A");
    assert_eq!(server.seen(&token_b), 0);

    // Token A expires: the endpoint accepts only B, the command now prints B, and the
    // daemon's connection is dropped. It must log in again with a freshly fetched token.
    std::fs::write(&token_file, format!("{token_b}\n")).expect("write token");
    server.accept_only(&token_b);
    let kicked = std::process::Command::new("doveadm")
        .arg("-c")
        .arg(&conf)
        .args(["kick", "oauthdesk@example.com"])
        .output()
        .expect("doveadm kick");
    assert!(
        kicked.status.success(),
        "doveadm kick: {}",
        String::from_utf8_lossy(&kicked.stderr)
    );
    let second = format!("OAuth second {run}");
    stack.send(
        &customer,
        "oauthdesk@example.com",
        &mail(
            &customer,
            &second,
            &format!("{}@c.example", nonce()),
            "",
            "Still there after the token expired?",
        ),
    );
    wait_for("customer1@example.com", |m| {
        subject_has(m, &format!("Ticket received: {second}"))
    });
    assert!(
        server.seen(&token_b) >= 1,
        "the daemon ran oauth2_token_command again and logged in with token B"
    );
    wait_until("both mails are tickets", 10, || {
        scratch
            .json(&["tickets", "list", "--json"])
            .as_array()
            .map_or(0, Vec::len)
            == 2
    });
    let log_path = daemon.log.clone();
    daemon.stop();
    let log = std::fs::read_to_string(log_path).expect("daemon log");
    assert!(
        log.contains("IMAP connected"),
        "the daemon logged its login: {log}"
    );
    assert!(
        !log.contains(&token_a) && !log.contains(&token_b),
        "a token leaked into the daemon's log:\n{log}"
    );
}
