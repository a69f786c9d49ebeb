//! Access to the loopback mail stack (tests/mailstack/start.sh) for end-to-end tests: its
//! ports from the environment, a config that sends through it, and reading a test user's
//! real mailbox over IMAP.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The running stack, as `start.sh` exported it.
pub struct Stack {
    pub smtp_port: u16,
    pub imap_port: u16,
    pub ca_cert: PathBuf,
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
        }),
        _ => {
            let required = std::env::var("POSTDESK_REQUIRE_MAILSTACK").is_ok_and(|v| v == "1");
            assert!(
                !required,
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

/// APPENDs every file of `dir` to `address`'s `folder`.
pub fn append_dir(address: &str, folder: &str, dir: &std::path::Path) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mailstack/append.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(address)
        .arg(folder)
        .arg(dir)
        .output()
        .expect("run append.py");
    assert!(
        output.status.success(),
        "append.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every message in `address`'s INBOX, raw.
pub fn mailbox(address: &str) -> Vec<String> {
    folder(address, "INBOX")
}

/// Every message in one of `address`'s folders, raw (empty when the folder does not exist).
pub fn folder(address: &str, name: &str) -> Vec<String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mailstack/fetch.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(address)
        .arg(name)
        .output()
        .expect("run fetch.py");
    assert!(
        output.status.success(),
        "fetch.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let messages: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("fetch.py JSON");
    messages
        .into_iter()
        .filter_map(|m| m["raw"].as_str().map(|s| s.replace("\r\n", "\n")))
        .collect()
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
