//! Access to the loopback mail stack (tests/mailstack/start.sh) for end-to-end tests: its
//! ports from the environment (the suite's shared stack) or a private stack a test starts and
//! stops itself ([`start_private`], for tests that stop or restart the servers), a config
//! that sends through it, and reading a test user's real mailbox over IMAP.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The running stack, as `start.sh` exported it.
pub struct Stack {
    pub smtp_port: u16,
    pub imap_port: u16,
    pub ca_cert: PathBuf,
    /// The `POSTDESK_*` variables of a private stack, given to the helper scripts; empty for
    /// the shared stack (the scripts then read the test process's environment).
    pub env: Vec<(String, String)>,
}

fn required() -> bool {
    std::env::var("POSTDESK_REQUIRE_MAILSTACK").is_ok_and(|v| v == "1")
}

/// The stack, or `None` (the test then returns early) when it is not running. With
/// `POSTDESK_REQUIRE_MAILSTACK=1` (CI) a missing stack fails the test instead.
pub fn stack(test: &str) -> Option<Stack> {
    let port = |name: &str| std::env::var(name).ok().and_then(|p| p.parse().ok());
    let ca = std::env::var_os("POSTDESK_CA_CERT").map(PathBuf::from);
    match (port("POSTDESK_SMTP_PORT"), port("POSTDESK_IMAP_PORT"), ca) {
        (Some(smtp_port), Some(imap_port), Some(ca_cert)) => Some(Stack {
            smtp_port,
            imap_port,
            ca_cert,
            env: Vec::new(),
        }),
        _ => {
            assert!(
                !required(),
                "{test}: the mail stack is not running (start it with tests/mailstack/start.sh)"
            );
            eprintln!("SKIPPED {test}: no mail stack (run the suite with tests/run-all.sh)");
            None
        }
    }
}

impl Stack {
    /// A postdesk config sending through the stack's Postfix with STARTTLS and the test CA,
    /// reading from a local Maildir, with `agent1@example.com` as the agent.
    pub fn config(&self, language: &str, smtp_port: u16) -> String {
        format!(
            r#"[general]
data_dir = "var"
base_url = "http://127.0.0.1:8080"
language = "{language}"
support_address = "support@example.com"
support_name = "Example Support"

[source]
kind = "maildir"
path = "var/inbox"

[smtp]
kind = "smtp"
host = "127.0.0.1"
port = {smtp_port}
tls = "starttls"
ca_file = "{ca}"
timeout = "5s"
retry_delay = "500ms"

[[agents]]
email = "agent1@example.com"
name = "Anna Agent"
"#,
            ca = self.ca_cert.display()
        )
    }
}

impl Stack {
    /// The same config reading `support@example.com`'s INBOX over IMAP (STARTTLS, IDLE),
    /// moving handled mail to `Processed` and quarantined mail to `Failed`.
    pub fn imap_config(&self, language: &str) -> String {
        self.config(language, self.smtp_port).replace(
            "[source]\nkind = \"maildir\"\npath = \"var/inbox\"\n",
            &format!(
                "[source]\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nca_file = \"{}\"\n\
                 username = \"support@example.com\"\npassword = \"secret-support\"\n\
                 processed_mailbox = \"Processed\"\nfailed_mailbox = \"Failed\"\n",
                self.imap_port,
                self.ca_cert.display()
            ),
        )
    }

    /// Sends raw mail through the stack's SMTP server.
    pub fn send(&self, from: &str, to: &str, raw: &[u8]) {
        use lettre::Transport;
        let transport = lettre::SmtpTransport::builder_dangerous("127.0.0.1")
            .port(self.smtp_port)
            .build();
        // An empty `from` is the null reverse path `<>` that bounces use.
        let sender = (!from.is_empty()).then(|| from.parse().expect("from"));
        let envelope = lettre::address::Envelope::new(sender, vec![to.parse().expect("to")])
            .expect("envelope");
        transport
            .send_raw(&envelope, raw)
            .expect("SMTP accepted the mail");
    }
}

fn script(name: &str) -> Command {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mailstack")
        .join(name);
    let mut command = Command::new("python3");
    command.arg(path);
    command
}

fn run_ok(mut command: Command, what: &str) -> Vec<u8> {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn append_with(env: &[(String, String)], address: &str, folder: &str, dir: &Path) {
    let mut command = script("append.py");
    command
        .args([address, folder])
        .arg(dir)
        .envs(env.iter().cloned());
    run_ok(command, "append.py");
}

/// `fetch.py` output: every message (or with `headers`, only its header block) of a folder.
fn fetch_with(env: &[(String, String)], address: &str, name: &str, headers: bool) -> Vec<String> {
    let mut command = script("fetch.py");
    command.args([address, name]).envs(env.iter().cloned());
    if headers {
        command.arg("headers");
    }
    let stdout = run_ok(command, "fetch.py");
    let messages: Vec<serde_json::Value> = serde_json::from_slice(&stdout).expect("fetch.py JSON");
    messages
        .into_iter()
        .filter_map(|m| m["raw"].as_str().map(|s| s.replace("\r\n", "\n")))
        .collect()
}

/// APPENDs every file of `dir` to `address`'s `folder`.
pub fn append_dir(address: &str, folder: &str, dir: &std::path::Path) {
    append_with(&[], address, folder, dir);
}

/// Every message in `address`'s INBOX, raw.
pub fn mailbox(address: &str) -> Vec<String> {
    folder(address, "INBOX")
}

/// Every message in one of `address`'s folders, raw (empty when the folder does not exist).
pub fn folder(address: &str, name: &str) -> Vec<String> {
    fetch_with(&[], address, name, false)
}

impl Stack {
    /// APPENDs every file of `dir` to `address`'s `folder` on this stack.
    pub fn append_dir(&self, address: &str, folder: &str, dir: &Path) {
        append_with(&self.env, address, folder, dir);
    }

    /// Every message in one of `address`'s folders on this stack, raw.
    pub fn folder(&self, address: &str, name: &str) -> Vec<String> {
        fetch_with(&self.env, address, name, false)
    }

    /// The header blocks of every message in one of `address`'s folders on this stack (one
    /// round trip, for counting thousands of mails).
    pub fn headers(&self, address: &str, name: &str) -> Vec<String> {
        fetch_with(&self.env, address, name, true)
    }

    /// A variable of this stack's `start.sh` output (private) or of the environment (shared).
    pub fn var(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .or_else(|| std::env::var(name).ok())
            .unwrap_or_else(|| panic!("{name} is not set"))
    }

    /// Stops Dovecot, runs `during`, and starts it again with the same config. The whole
    /// process group of its master goes (the master alone would leave the running `imap`
    /// processes serving their connections), so every IMAP connection is dropped.
    pub fn restart_dovecot(&self, during: impl FnOnce()) {
        let pid_file = self.var("POSTDESK_DOVECOT_PID_FILE");
        let pid = std::fs::read_to_string(&pid_file)
            .expect("dovecot pid")
            .trim()
            .to_string();
        assert!(Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .status()
            .expect("kill")
            .success());
        let group_alive = || {
            let ps = Command::new("ps")
                .args(["-e", "-o", "pgid=,stat="])
                .output()
                .expect("ps");
            String::from_utf8_lossy(&ps.stdout).lines().any(|line| {
                let mut fields = line.split_whitespace();
                fields.next() == Some(pid.as_str())
                    && !fields.next().unwrap_or("Z").starts_with('Z')
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while group_alive() {
            assert!(Instant::now() < deadline, "dovecot did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        during();
        let status = Command::new("dovecot")
            .arg("-c")
            .arg(self.var("POSTDESK_DOVECOT_CONF"))
            .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("start dovecot");
        assert!(status.success(), "dovecot restarted");
    }

    /// Stops (`false`: until its master process is gone) or starts (`true`) this stack's
    /// Postfix.
    pub fn postfix(&self, start: bool) {
        let action = if start { "start" } else { "stop" };
        let run = || {
            Command::new("postfix")
                .arg("-c")
                .arg(self.var("POSTDESK_POSTFIX_CONFIG_DIR"))
                .arg(action)
                .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
                .output()
                .expect("run postfix")
        };
        let master = std::fs::read_to_string(self.var("POSTDESK_POSTFIX_PID_FILE"))
            .map(|p| p.trim().to_string())
            .unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut output = run();
        // A start right after a stop can find the old master still exiting: try again.
        while start && !output.status.success() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(300));
            output = run();
        }
        assert!(
            output.status.success(),
            "postfix {action}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if !start && !master.is_empty() {
            while std::fs::read_to_string(format!("/proc/{master}/stat"))
                .is_ok_and(|s| !s.contains(") Z "))
            {
                assert!(Instant::now() < deadline, "postfix did not stop");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Starting and stopping a private stack: the benches' helper, shared (tests that need its
/// own API use it as `common::mailstack::private`).
#[path = "../../benches/stack/mod.rs"]
pub mod private;

/// A mail stack of one test's own (`tests/mailstack/start.sh DIR`), stopped when dropped.
pub struct PrivateStack {
    pub stack: Stack,
    running: private::Stack,
}

impl std::ops::Deref for PrivateStack {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

impl PrivateStack {
    /// Its state directory (logs, maildirs).
    pub fn dir(&self) -> &Path {
        &self.running.dir
    }
}

/// Starts a private stack in `/tmp/pdms-NAME-PID` (NAME short: unix socket paths are
/// limited). `None` (the test returns early, saying it was skipped) when it cannot start; with
/// `POSTDESK_REQUIRE_MAILSTACK=1` (CI) that fails the test instead.
pub fn start_private(name: &str) -> Option<PrivateStack> {
    let dir = PathBuf::from(format!("/tmp/pdms-{name}-{}", std::process::id()));
    let running = match private::Stack::start(&dir, &[]) {
        Ok(running) => running,
        Err(why) => {
            assert!(
                !required(),
                "{name}: the private mail stack did not start (tests/mailstack/start.sh): {why}"
            );
            eprintln!("SKIPPED {name}: the private mail stack did not start: {why}");
            return None;
        }
    };
    let stack = Stack {
        smtp_port: running.smtp_port,
        imap_port: running.imap_port,
        ca_cert: running.ca.clone(),
        env: running.env.clone(),
    };
    Some(PrivateStack { stack, running })
}

/// Waits (up to 20 s) until `address` has a message matching `wanted`, and returns it.
pub fn wait_for(address: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = mailbox(address).into_iter().find(|m| wanted(m)) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no matching mail arrived for {address}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The decoded value of header `name` in a raw mail (LF line endings), unfolded. Encoded
/// words are decoded by mail-parser, as a mail client would.
pub fn decoded_header(raw: &str, name: &str) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse(raw.as_bytes())?;
    match name.to_ascii_lowercase().as_str() {
        "subject" => message.subject().map(str::to_string),
        _ => message.header_raw(name).map(|v| v.trim().to_string()),
    }
}

/// The decoded text body of a raw mail.
pub fn body_text(raw: &str) -> String {
    mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default()
}

/// A value unique to this moment, to tell one test's mails from another's in shared mailboxes.
pub fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}")
}

/// The decoded Subject is exactly `expected`.
pub fn subject_is(raw: &str, expected: &str) -> bool {
    decoded_header(raw, "Subject").is_some_and(|s| s == expected)
}

/// The decoded Subject contains `part`.
pub fn subject_has(raw: &str, part: &str) -> bool {
    decoded_header(raw, "Subject").is_some_and(|s| s.contains(part))
}

/// The Message-ID of a raw mail, without angle brackets.
pub fn message_id_of(raw: &str) -> String {
    decoded_header(raw, "Message-ID")
        .expect("Message-ID")
        .trim_matches(['<', '>'])
        .to_string()
}
