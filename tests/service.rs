//! Running under systemd, driven through the built binary: the notify protocol on a
//! `NOTIFY_SOCKET` of the test's own (`READY=1`, `STATUS=`, `WATCHDOG=1`, `STOPPING=1`), a
//! clean SIGTERM that loses and doubles nothing, SIGHUP reloading the mail templates, and the
//! unit file passing `systemd-analyze verify` where that tool exists.

mod common;
#[allow(dead_code)]
mod fake_smtp;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{mail, Scratch};

/// The messages the daemon sent to our `NOTIFY_SOCKET`, as they arrive.
struct Listener {
    messages: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Listener {
    fn bind(path: &Path) -> Listener {
        let socket = UnixDatagram::bind(path).expect("bind NOTIFY_SOCKET");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                if tx.send(text).is_err() {
                    break;
                }
            }
        });
        Listener {
            messages: rx,
            seen: Vec::new(),
        }
    }

    /// Waits until `done` holds for the messages seen so far.
    fn wait_until(&mut self, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(message) => self.seen.push(message),
                Err(_) => panic!("no {what}; saw {:?}", self.seen),
            }
        }
    }
}

/// A daemon that is killed when dropped, so a failing test never leaves one running.
struct Guarded(Child);

impl std::ops::Deref for Guarded {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn count(seen: &[String], message: &str) -> usize {
    seen.iter().filter(|m| m.as_str() == message).count()
}

fn start(scratch: &Scratch, socket: &Path) -> Guarded {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(scratch.path("daemon.log"))
        .expect("log");
    scratch
        .command(&["run"])
        .env("NOTIFY_SOCKET", socket)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .env("JOURNAL_STREAM", "8:12345")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Guarded)
        .expect("spawn run")
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not stop within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ticket_count(scratch: &Scratch) -> usize {
    ticket_count_with(scratch, &[])
}

fn ticket_count_with(scratch: &Scratch, env: &[(&str, &str)]) -> usize {
    let output = scratch
        .command(&["tickets", "list", "--json"])
        .envs(env.iter().copied())
        .output()
        .expect("tickets list");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    list.as_array().map_or(0, Vec::len)
}

fn daemon_log(scratch: &Scratch) -> String {
    std::fs::read_to_string(scratch.path("daemon.log")).unwrap_or_default()
}

#[test]
fn notifies_systemd_pings_the_watchdog_and_stops_cleanly_on_sigterm() {
    let scratch = Scratch::new();
    let socket = scratch.path("notify.sock");
    let mut listener = Listener::bind(&socket);
    let mut daemon = start(&scratch, &socket);

    listener.wait_until("READY=1", |s| count(s, "READY=1") == 1);
    listener.wait_until("two watchdog pings and a status", |s| {
        count(s, "WATCHDOG=1") >= 2 && s.iter().any(|m| m.starts_with("STATUS="))
    });
    let ready = listener.seen.iter().position(|m| m == "READY=1");
    let first_ping = listener.seen.iter().position(|m| m == "WATCHDOG=1");
    assert!(
        ready < first_ping,
        "READY=1 before the pings: {:?}",
        listener.seen
    );
    let status = listener
        .seen
        .iter()
        .find(|m| m.starts_with("STATUS="))
        .cloned()
        .unwrap_or_default();
    assert!(
        status.starts_with("STATUS=Taking mail from maildir:")
            && status.ends_with("; 0 tickets open"),
        "{status}"
    );

    // A mail arrives just before the stop: it is stored now or at the next start, once.
    let raw = mail(
        "Olena <customer1@example.com>",
        "Printer",
        "last-minute@client.example",
        "",
        "It smokes.",
    );
    let tmp = scratch.path("var/inbox/tmp/1700000000.1.host");
    std::fs::write(&tmp, &raw).expect("write tmp");
    std::fs::rename(&tmp, scratch.path("var/inbox/new/1700000000.1.host")).expect("rename");
    std::thread::sleep(Duration::from_millis(150));
    signal(&daemon, "TERM");
    listener.wait_until("STOPPING=1", |s| count(s, "STOPPING=1") == 1);
    let exit = wait_exit(&mut daemon, Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0), "{}", daemon_log(&scratch));

    // Restart, let it take whatever is left, stop again.
    let mut daemon = start(&scratch, &socket);
    listener.wait_until("READY=1 again", |s| count(s, "READY=1") == 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(scratch.path("var/inbox/new"))
        .expect("new/")
        .next()
        .is_some()
    {
        assert!(Instant::now() < deadline, "the mail stayed in new/");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&daemon, "TERM");
    let exit = wait_exit(&mut daemon, Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0));
    listener.wait_until("STOPPING=1 again", |s| count(s, "STOPPING=1") == 2);
    assert_eq!(ticket_count(&scratch), 1, "{}", daemon_log(&scratch));

    // Under systemd (JOURNAL_STREAM set) journald stamps the lines: no timestamps of our own.
    let log = daemon_log(&scratch);
    let first = log.lines().next().unwrap_or_default();
    assert!(first.trim_start().starts_with("INFO"), "{first}");
}

#[test]
fn sighup_reloads_the_mail_templates_and_keeps_the_old_ones_on_an_error() {
    let scratch = Scratch::new();
    let dir = scratch.path("templates/mail/en");
    std::fs::create_dir_all(&dir).expect("templates dir");
    let socket = scratch.path("notify.sock");
    let mut listener = Listener::bind(&socket);
    let mut daemon = {
        let log = std::fs::File::create(scratch.path("daemon.log")).expect("log");
        scratch
            .command(&["run"])
            .env("NOTIFY_SOCKET", &socket)
            .env("POSTDESK__GENERAL__TEMPLATES_DIR", "templates")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map(Guarded)
            .expect("spawn run")
    };
    listener.wait_until("READY=1", |s| count(s, "READY=1") == 1);

    let wait_for_log = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !daemon_log(&scratch).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in\n{}",
                daemon_log(&scratch)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    std::fs::write(dir.join("ticket_received.txt"), "Hello {{ broken\n").expect("write");
    signal(&daemon, "HUP");
    wait_for_log("Templates not reloaded");
    assert!(
        daemon_log(&scratch).contains("ticket_received.txt"),
        "the error names the file"
    );

    std::fs::write(
        dir.join("ticket_received.txt"),
        "Subject: [#{{ tracking_id }}] Reloaded: {{ subject }}\n\n{{ reply_marker }}\n\nHello.\n",
    )
    .expect("write");
    signal(&daemon, "HUP");
    wait_for_log("Templates reloaded");
    assert!(daemon.try_wait().expect("wait").is_none(), "still running");
    signal(&daemon, "TERM");
    assert_eq!(
        wait_exit(&mut daemon, Duration::from_secs(10)).code(),
        Some(0)
    );
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let unit = include_str!("../packaging/postdesk.service");
    for line in [
        "Type=notify",
        "WatchdogSec=30",
        "Restart=on-failure",
        "User=postdesk",
        "StateDirectory=postdesk",
        "ConfigurationDirectory=postdesk",
        "ExecStart=/usr/local/bin/postdesk run --config /etc/postdesk/config.toml",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing");
    }
    // `verify` wants the ExecStart binary to exist: point it at the one just built.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("postdesk.service");
    let local = unit.replace("/usr/local/bin/postdesk", env!("CARGO_BIN_EXE_postdesk"));
    std::fs::write(&path, local).expect("write unit");
    match std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
    {
        Err(e) => eprintln!("systemd-analyze not available ({e}); unit not verified"),
        Ok(output) => assert!(
            output.status.success() && output.stderr.is_empty(),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// The daemon's log at the most verbose level, with the secrets given through the
/// environment, must not contain them.
fn assert_secrets_absent(scratch: &Scratch, secrets: &[&str], extra: &str) {
    let log = daemon_log(scratch) + extra;
    assert!(
        log.len() > 200,
        "the log is too short to mean anything:\n{log}"
    );
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "{secret:?} leaked into the log:\n{log}"
        );
    }
}

#[test]
fn secrets_from_the_environment_never_reach_the_logs() {
    let scratch = Scratch::new();
    // The mails go out through a fake SMTP server that asks for AUTH.
    let server = fake_smtp::FakeSmtp::start(fake_smtp::Behaviour {
        auth_reply: Some("235 2.7.0 ok"),
        ..fake_smtp::Behaviour::default()
    });
    let port = server.port.to_string();
    let secrets = ["imap-pw-4f1c9e", "smtp-pw-8a2d7b"];
    let env = [
        ("POSTDESK__SOURCE__PASSWORD", secrets[0]),
        ("POSTDESK__SMTP__KIND", "smtp"),
        ("POSTDESK__SMTP__HOST", "127.0.0.1"),
        ("POSTDESK__SMTP__PORT", port.as_str()),
        ("POSTDESK__SMTP__TLS", "none"),
        ("POSTDESK__SMTP__USERNAME", "relay-user"),
        ("POSTDESK__SMTP__PASSWORD", secrets[1]),
        ("RUST_LOG", "trace"),
    ];
    let socket = scratch.path("notify.sock");
    let mut listener = Listener::bind(&socket);
    let mut daemon = {
        let log = std::fs::File::create(scratch.path("daemon.log")).expect("log");
        scratch
            .command(&["run"])
            .envs(env)
            .env("NOTIFY_SOCKET", &socket)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map(Guarded)
            .expect("spawn run")
    };
    listener.wait_until("READY=1", |s| count(s, "READY=1") == 1);
    let raw = mail(
        "Olena <customer1@example.com>",
        "Printer",
        "p1@client.example",
        "",
        "Smoke.",
    );
    std::fs::write(scratch.path("var/inbox/new/1.host"), &raw).expect("drop mail");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.seen.lock().expect("seen").messages.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no mail sent:\n{}",
            daemon_log(&scratch)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&daemon, "TERM");
    assert_eq!(
        wait_exit(&mut daemon, Duration::from_secs(10)).code(),
        Some(0)
    );

    let mut deliver = scratch.command(&["deliver"]);
    deliver
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = deliver.spawn().expect("deliver");
    let second = mail(
        "Petro <customer2@example.com>",
        "Scanner",
        "s1@client.example",
        "",
        "Jam.",
    );
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &second).expect("stdin");
    let output = child.wait_with_output().expect("deliver output");
    assert!(output.status.success());
    // The AUTH exchange as it went over the wire (base64 credentials), besides the plain ones.
    let auth: Vec<String> = {
        let seen = server.seen.lock().expect("seen");
        let start = seen.commands.iter().position(|c| c.starts_with("AUTH"));
        let wire = start.map_or(&[][..], |i| {
            &seen.commands[i..(i + 3).min(seen.commands.len())]
        });
        wire.iter()
            .flat_map(|c| {
                c.split_whitespace()
                    .skip(usize::from(c.starts_with("AUTH")))
            })
            .filter(|token| token.len() >= 8 && !token.starts_with("MAIL"))
            .map(str::to_string)
            .collect()
    };
    assert!(!auth.is_empty(), "the daemon logged in to SMTP");
    let mut all: Vec<&str> = secrets.to_vec();
    all.extend(auth.iter().map(String::as_str));
    assert_secrets_absent(&scratch, &all, &String::from_utf8_lossy(&output.stderr));
}

#[test]
fn the_imap_password_from_the_environment_never_reaches_the_logs() {
    let Some(stack) =
        common::mailstack::stack("the_imap_password_from_the_environment_never_reaches_the_logs")
    else {
        return;
    };
    // agent2's mailbox, which no other test reads, stands in for the support mailbox.
    let config = stack
        .imap_config("en")
        .replace("password = \"secret-support\"\n", "")
        .replace(
            "username = \"support@example.com\"",
            "username = \"agent2@example.com\"",
        );
    assert!(!config.contains("secret-support") && config.contains("agent2@"));
    let scratch = Scratch::with_config(&config);
    let socket = scratch.path("notify.sock");
    let mut listener = Listener::bind(&socket);
    let mut daemon = {
        let log = std::fs::File::create(scratch.path("daemon.log")).expect("log");
        scratch
            .command(&["run"])
            .env("POSTDESK__SOURCE__PASSWORD", "secret-agent2")
            .env("RUST_LOG", "trace")
            .env("NOTIFY_SOCKET", &socket)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map(Guarded)
            .expect("spawn run")
    };
    listener.wait_until("READY=1", |s| count(s, "READY=1") == 1);
    let nonce = common::mailstack::nonce();
    let raw = mail(
        "Olena <customer1@example.com>",
        &format!("Printer {nonce}"),
        &format!("{nonce}@client.example"),
        "",
        "Smoke.",
    );
    stack.send("customer1@example.com", "agent2@example.com", &raw);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticket_count_with(&scratch, &[("POSTDESK__SOURCE__PASSWORD", "secret-agent2")]) == 0 {
        assert!(
            Instant::now() < deadline,
            "no ticket:\n{}",
            daemon_log(&scratch)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    listener.wait_until("a status saying it is connected", |s| {
        s.iter()
            .any(|m| m.starts_with("STATUS=Taking mail from imap://127.0.0.1/INBOX;"))
    });
    signal(&daemon, "TERM");
    assert_eq!(
        wait_exit(&mut daemon, Duration::from_secs(10)).code(),
        Some(0)
    );
    assert_secrets_absent(&scratch, &["secret-agent2"], "");
}

#[test]
fn a_second_sigterm_exits_at_once_while_a_send_hangs() {
    let scratch = Scratch::new();
    // An SMTP server that accepts the connection and never answers: the send hangs.
    let server = fake_smtp::FakeSmtp::start(fake_smtp::Behaviour {
        silent: true,
        ..fake_smtp::Behaviour::default()
    });
    let port = server.port.to_string();
    let socket = scratch.path("notify.sock");
    let mut listener = Listener::bind(&socket);
    let mut daemon = {
        let log = std::fs::File::create(scratch.path("daemon.log")).expect("log");
        scratch
            .command(&["run"])
            .envs([
                ("POSTDESK__SMTP__KIND", "smtp"),
                ("POSTDESK__SMTP__HOST", "127.0.0.1"),
                ("POSTDESK__SMTP__PORT", port.as_str()),
                ("POSTDESK__SMTP__TLS", "none"),
                ("POSTDESK__SMTP__TIMEOUT", "60s"),
                ("RUST_LOG", "info"),
            ])
            .env("NOTIFY_SOCKET", &socket)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map(Guarded)
            .expect("spawn run")
    };
    listener.wait_until("READY=1", |s| count(s, "READY=1") == 1);
    let raw = mail(
        "Olena <customer1@example.com>",
        "Printer",
        "p2@client.example",
        "",
        "Smoke.",
    );
    std::fs::write(scratch.path("var/inbox/new/1.host"), &raw).expect("drop mail");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.seen.lock().expect("seen").connections == 0 {
        assert!(Instant::now() < deadline, "no SMTP connection");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&daemon, "TERM");
    listener.wait_until("STOPPING=1", |s| count(s, "STOPPING=1") == 1);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        daemon.try_wait().expect("wait").is_none(),
        "waits for the send in flight"
    );
    let asked = Instant::now();
    signal(&daemon, "TERM");
    let exit = wait_exit(&mut daemon, Duration::from_secs(2));
    assert_eq!(exit.code(), Some(143), "{}", daemon_log(&scratch));
    assert!(asked.elapsed() < Duration::from_secs(1));
}
