//! `postdesk deliver` as Postfix's pipe(8) transport, on a private stack with a pipe route
//! (tests/mailstack/start.sh with POSTDESK_PIPE_*): while `deliver` cannot store the mail it
//! exits 75 and Postfix keeps it and retries; once it can, the mail becomes exactly one
//! ticket and its sender gets exactly one `ticket_received`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::mailstack::nonce;
use common::mailstack::private as stack;
use common::wait_until;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn tickets(db: &Path) -> i64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT count(*) FROM tickets", [], |r| r.get(0)))
        .unwrap_or(0)
}

/// The mails in a stack user's INBOX (its maildir), raw.
fn inbox(stack: &stack::Stack, user: &str) -> Vec<String> {
    let mut mails = Vec::new();
    for sub in ["new", "cur"] {
        let dir = stack
            .dir
            .join(format!("mail/example.com/{user}/Maildir/{sub}"));
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            mails.push(read(&entry.path()));
        }
    }
    mails
}

#[test]
fn postfix_keeps_the_mail_while_deliver_exits_75_and_it_is_stored_once_after() {
    // The same switch as every end-to-end test: the suite's stack is up (so this is root
    // on a machine with Postfix and Dovecot); this test runs a private one beside it.
    if common::mailstack::stack("e2e_pipe").is_none() {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("pdpipe")
        .tempdir_in("/tmp")
        .expect("work dir");
    let root = work.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // Root's and 0755: the pipe's user (vmail) cannot create the database yet.
    let var = root.join("var");
    std::fs::create_dir(&var).expect("var");
    let config = root.join("config.toml");
    let command = format!(
        "{} deliver --config {}",
        env!("CARGO_BIN_EXE_postdesk"),
        config.display()
    );
    let stack = stack::Stack::start(
        Path::new(&format!("/tmp/pdpp-{}", std::process::id())),
        &[
            ("POSTDESK_PIPE_ADDRESS", "desk@example.com"),
            ("POSTDESK_PIPE_COMMAND", &command),
        ],
    )
    .expect("private stack with a pipe route");
    std::fs::write(
        &config,
        format!(
            "[general]\ndata_dir = \"var\"\nsupport_address = \"desk@example.com\"\n\
             support_name = \"Desk\"\n\n[smtp]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\n\
             port = {}\ntls = \"starttls\"\nca_file = \"{}\"\ntimeout = \"5s\"\n",
            stack.smtp_port,
            stack.ca.display()
        ),
    )
    .expect("config");

    let run = nonce();
    let raw = format!(
        "From: Olena <customer1@example.com>\r\nTo: desk@example.com\r\n\
         Subject: Pipe {run}\r\nMessage-ID: <pipe-{run}@c.example>\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nThe printer is on fire.\r\n"
    );
    {
        use lettre::Transport;
        let envelope = lettre::address::Envelope::new(
            Some("customer1@example.com".parse().expect("from")),
            vec!["desk@example.com".parse().expect("to")],
        )
        .expect("envelope");
        lettre::SmtpTransport::builder_dangerous("127.0.0.1")
            .port(stack.smtp_port)
            .build()
            .send_raw(&envelope, raw.as_bytes())
            .expect("Postfix accepted the mail");
    }
    let log = stack.dir.join("postfix.log");
    wait_until("Postfix deferred the mail after exit 75", 20, || {
        read(&log)
            .lines()
            .any(|l| l.contains("to=<desk@example.com>") && l.contains("status=deferred"))
    });
    let db = var.join("postdesk.db");
    assert_eq!(tickets(&db), 0);

    let chown = Command::new("chown")
        .args(["-R", "vmail:vmail"])
        .arg(&var)
        .status()
        .expect("chown");
    assert!(chown.success());
    wait_until("the retried mail is a ticket", 30, || tickets(&db) == 1);
    let received = |mail: &String| mail.contains("Ticket received") && mail.contains(&run);
    wait_until("ticket_received reached the customer", 20, || {
        inbox(&stack, "customer1").iter().any(received)
    });
    // Long enough for Postfix's next queue run (1 s here) to deliver anything twice.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(tickets(&db), 1, "stored exactly once");
    assert_eq!(
        inbox(&stack, "customer1")
            .iter()
            .filter(|m| received(m))
            .count(),
        1,
        "one ticket_received"
    );
    let delivered = read(&log)
        .lines()
        .filter(|l| l.contains("to=<desk@example.com>") && l.contains("status=sent"))
        .count();
    assert_eq!(delivered, 1, "Postfix handed the mail over once");
    drop(stack);
}
