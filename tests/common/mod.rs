//! Shared helpers for the tests that drive the built `postdesk` binary: a scratch directory
//! with the committed default config, and small runners for its commands.

#![allow(dead_code)]

pub mod hostile;
pub mod mailstack;
pub mod proxy;
pub mod robot;
pub mod tmpfs;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch installation: the committed `config.toml` in a temp directory, so `var/` lands
/// beside it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch::with_config(include_str!("../../config.toml"))
    }

    pub fn with_config(config: &str) -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        Scratch { dir }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_postdesk"));
        command
            .args(args)
            .arg("--config")
            .arg(self.path("config.toml"))
            .env_remove("POSTDESK_CONFIG")
            // `run` serves the tracking page: any free port, so parallel tests do not clash.
            .env("POSTDESK__WEB__BIND", "127.0.0.1:0")
            .env("RUST_LOG", "warn");
        command
    }

    /// Runs `postdesk deliver` with `raw` on stdin.
    pub fn deliver(&self, raw: &[u8]) -> Output {
        let mut child = self
            .command(&["deliver"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn deliver");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(raw)
            .expect("write stdin");
        child.wait_with_output().expect("deliver output")
    }

    /// Delivers and returns the printed outcome.
    pub fn deliver_ok(&self, raw: &[u8]) -> serde_json::Value {
        let output = self.deliver(raw);
        assert!(
            output.status.success(),
            "deliver failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("outcome JSON")
    }

    /// Runs a command that must succeed and returns its stdout parsed as JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let output = self.command(args).output().expect("run");
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON output")
    }

    /// The `.eml` files written by the file transport, read as text.
    pub fn outbox(&self) -> Vec<String> {
        read_dir_texts(&self.path("var/outbox"))
    }
}

pub fn read_dir_texts(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut texts: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read_to_string(e.path()).expect("read eml"))
        .collect();
    texts.sort();
    texts
}

/// The value of header `name` in a mail's header block (unfolded).
pub fn header(mail: &str, name: &str) -> Option<String> {
    let head = mail.split("\r\n\r\n").next().unwrap_or(mail);
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

/// A simple mail from `from` with `subject`, `message_id` and `body`.
pub fn mail(
    from: &str,
    subject: &str,
    message_id: &str,
    extra_headers: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: Example Support <support@example.com>\r\nSubject: {subject}\r\n\
         Message-ID: <{message_id}>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n{extra_headers}\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// The daemon under test; killed when dropped, so a failing test never leaves it running.
pub struct Daemon {
    pub child: Child,
    pub log: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("daemon state before the kill: {:?}", self.child.try_wait());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- daemon log ---\n{log}\n--- end of daemon log ---");
        }
    }
}

impl Daemon {
    pub fn start(scratch: &Scratch) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(scratch.path("daemon.log"))
            .expect("log");
        let child = scratch
            .command(&["run"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn run");
        Daemon {
            child,
            log: scratch.path("daemon.log"),
        }
    }

    pub fn kill_hard(self) {
        drop(self);
    }

    pub fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(
                Instant::now() < deadline,
                "the daemon did not stop within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits (polling every 100 ms, up to `seconds`) until `done` holds; fails naming `what`.
pub fn wait_until(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A loopback port nothing listens on (free at the moment of the call).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Scratch {
    /// `tickets list --json` as a vector.
    pub fn tickets(&self) -> Vec<serde_json::Value> {
        self.json(&["tickets", "list", "--json"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}
