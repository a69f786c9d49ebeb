//! Push latency on a loopback mail stack the bench starts itself (and stops): customer mails
//! sent through SMTP one at a time; for each, the time from Postfix's `250` to
//! (a) the ticket committed in postdesk's database and (b) `ticket_received` in the customer's
//! IMAP INBOX. Beside them the floor of each path:
//!
//! - `idle`: the daemon reading `support@` over IMAP IDLE; floor: SMTP `250` → `EXISTS` seen
//!   by a minimal IDLE client on the same stack (Dovecot batches notifications, ~0.5 s).
//! - `pipe`: `postdesk deliver` as Postfix's pipe(8) transport for `desk@` (no IDLE); floor:
//!   SMTP `250` → a trivial pipe command (`touch`) has run.
//!
//! Floor samples are interleaved with postdesk's, so both see the same machine load.
//!
//! Run: `cargo bench --locked --bench push_latency` as root (the stack needs it).
//! `PD_MODE=idle|pipe|both` (both), `PD_SAMPLES` (200), `PD_BIN` (the `postdesk` cargo built
//! for the bench, release settings). Under `cargo test --all-targets` it only prints a note.

#[path = "push_latency/measure.rs"]
mod measure;
mod stack;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_imap::extensions::idle::IdleResponse;
use async_imap::Session;
use tokio::net::TcpStream;

use measure::{customer_mail, ms, print_table, ticket_count, time_until, Smtp, Stats};
use stack::Stack;

type Imap = Session<TcpStream>;

const CUSTOMER: &str = "customer1@example.com";
const POLL: Duration = Duration::from_millis(2);

async fn login(port: u16, user: &str) -> Imap {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect IMAP");
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.expect("greeting");
    let password = format!("secret-{}", user.split('@').next().unwrap_or(""));
    client
        .login(user, password)
        .await
        .map_err(|(e, _)| e)
        .expect("IMAP login")
}

/// Mails in `session`'s user's INBOX (STATUS: Dovecot looks at the maildir each time).
fn inbox_count(rt: &tokio::runtime::Runtime, session: &mut Imap) -> u32 {
    rt.block_on(session.status("INBOX", "(MESSAGES)"))
        .expect("STATUS")
        .exists
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

/// The config both modes use; `source` is the `[source]` table.
fn config(stack: &Stack, support: &str, source: &str) -> String {
    format!(
        r#"[general]
data_dir = "var"
base_url = "http://127.0.0.1:8080"
language = "en"
support_address = "{support}"
support_name = "Example Support"

{source}

[smtp]
kind = "smtp"
host = "127.0.0.1"
port = {smtp}
tls = "starttls"
ca_file = "{ca}"
timeout = "5s"
retry_delay = "500ms"

[tickets]
auto_reply_limit_per_hour = 100000

[web]
bind = "127.0.0.1:0"

[[agents]]
email = "agent1@example.com"
name = "Anna Agent"
"#,
        smtp = stack.smtp_port,
        ca = stack.ca.display(),
    )
}

/// One customer mail to `to`: (a) until the ticket count grows, (b) until the customer's
/// INBOX does.
fn sample(
    rt: &tokio::runtime::Runtime,
    smtp: &mut Smtp,
    inbox: &mut Imap,
    db: &Path,
    to: &str,
    id: &str,
) -> (Option<f64>, Option<f64>) {
    let (tickets, mails) = (ticket_count(db), inbox_count(rt, inbox));
    let accepted = smtp.send(CUSTOMER, to, &customer_mail(CUSTOMER, to, id, id));
    let committed = time_until(accepted, POLL, || ticket_count(db) > tickets);
    let delivered = time_until(accepted, Duration::from_millis(5), || {
        inbox_count(rt, inbox) > mails
    });
    (committed, delivered)
}

fn idle_mode(root: &Path, bin: &Path, samples: usize) {
    let stack = Stack::start(&root.join("i"), &[]).unwrap_or_else(|e| fail(&e));
    let work = tempfile::tempdir().expect("tempdir");
    let source = format!(
        "[source]\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\n\
         ca_file = \"{}\"\nusername = \"support@example.com\"\npassword = \"secret-support\"\n\
         processed_mailbox = \"Processed\"\nfailed_mailbox = \"Failed\"",
        stack.imap_port,
        stack.ca.display()
    );
    let config_path = work.path().join("config.toml");
    std::fs::write(&config_path, config(&stack, "support@example.com", &source)).expect("config");
    let log = std::fs::File::create(work.path().join("daemon.log")).expect("log");
    let _daemon = Daemon(
        Command::new(bin)
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .env_remove("POSTDESK_CONFIG")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postdesk"),
    );
    let db = work.path().join("var/postdesk.db");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let imap_port = stack.imap_port;
    let mut smtp = Smtp::connect(stack.smtp_port);
    let mut inbox = rt.block_on(login(imap_port, CUSTOMER));
    let mut floor_session = rt.block_on(login(imap_port, "customer2@example.com"));
    rt.block_on(floor_session.select("INBOX")).expect("SELECT");

    // Warm-up: the daemon is logged in and idling once a first mail became a ticket.
    let (warm, _) = sample(
        &rt,
        &mut smtp,
        &mut inbox,
        &db,
        "support@example.com",
        "warm-i",
    );
    if warm.is_none() {
        fail("the daemon made no ticket of the warm-up mail within 30 s (see its log)");
    }

    let mut committed = Stats::new("(a) SMTP 250 -> ticket committed (daemon, IDLE)");
    let mut delivered = Stats::new("(b) SMTP 250 -> ticket_received in customer INBOX");
    let mut floor = Stats::new("floor: SMTP 250 -> IDLE EXISTS (minimal client)");
    for n in 0..samples {
        let id = format!("idle-{n}-{}", std::process::id());
        let (a, b) = sample(&rt, &mut smtp, &mut inbox, &db, "support@example.com", &id);
        committed.add(a);
        delivered.add(b);

        let mut idle = floor_session.idle();
        rt.block_on(idle.init()).expect("IDLE");
        let to = "customer2@example.com";
        let floor_id = format!("floor-{n}-{}", std::process::id());
        let accepted = smtp.send(
            CUSTOMER,
            to,
            &customer_mail(CUSTOMER, to, &floor_id, &floor_id),
        );
        let seen = rt.block_on(async {
            loop {
                let (wait, _stop) = idle.wait_with_timeout(Duration::from_secs(30));
                match wait.await {
                    Ok(IdleResponse::NewData(data)) => {
                        if format!("{:?}", data.parsed()).contains("Exists") {
                            break Some(Instant::now());
                        }
                    }
                    _ => break None,
                }
            }
        });
        floor.add(seen.map(|at| ms(at.saturating_duration_since(accepted))));
        floor_session = rt.block_on(idle.done()).expect("DONE");
        if (n + 1) % 50 == 0 {
            eprintln!("push_latency idle: {} of {samples}", n + 1);
        }
    }
    let _ = rt.block_on(inbox.logout());
    let _ = rt.block_on(floor_session.logout());
    print_table(
        "IDLE: `postdesk run` reading support@ over IMAP IDLE",
        &[&committed, &delivered, &floor],
    );
}

fn pipe_mode(root: &Path, bin: &Path, samples: usize) {
    // The pipe commands run as vmail (Postfix refuses root): their files must be vmail's.
    let work = root.join("pw");
    let touched = work.join("floor");
    std::fs::create_dir_all(&touched).expect("work dir");
    let config_path = work.join("config.toml");
    let command = format!(
        "{} deliver --config {}",
        bin.display(),
        config_path.display()
    );
    let floor_command = format!("/usr/bin/touch {}/${{queue_id}}", touched.display());
    let stack = Stack::start(
        &root.join("p"),
        &[
            ("POSTDESK_PIPE_ADDRESS", "desk@example.com"),
            ("POSTDESK_PIPE_COMMAND", &command),
            ("POSTDESK_PIPE_FLOOR_ADDRESS", "floor@example.com"),
            ("POSTDESK_PIPE_FLOOR_COMMAND", &floor_command),
            ("POSTDESK_PIPE_USER", "vmail"),
        ],
    )
    .unwrap_or_else(|e| fail(&e));
    std::fs::write(
        &config_path,
        config(&stack, "desk@example.com", "[source]\nkind = \"maildir\""),
    )
    .expect("config");
    let chown = Command::new("chown")
        .args(["-R", "vmail:vmail"])
        .arg(&work)
        .status()
        .expect("chown");
    assert!(chown.success(), "chown -R vmail {}", work.display());
    let db = work.join("var/postdesk.db");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut smtp = Smtp::connect(stack.smtp_port);
    let mut inbox = rt.block_on(login(stack.imap_port, CUSTOMER));

    // Warm-up: the first deliver creates the database.
    let (warm, _) = sample(
        &rt,
        &mut smtp,
        &mut inbox,
        &db,
        "desk@example.com",
        "warm-p",
    );
    if warm.is_none() {
        fail(&format!(
            "no ticket from the pipe within 30 s; see {}/postfix.log",
            stack.dir.display()
        ));
    }

    let mut committed = Stats::new("(a) SMTP 250 -> ticket committed (deliver via pipe)");
    let mut delivered = Stats::new("(b) SMTP 250 -> ticket_received in customer INBOX");
    let mut floor = Stats::new("floor: SMTP 250 -> pipe command ran (touch)");
    let floor_count = || std::fs::read_dir(&touched).map_or(0, |d| d.count());
    for n in 0..samples {
        let id = format!("pipe-{n}-{}", std::process::id());
        let (a, b) = sample(&rt, &mut smtp, &mut inbox, &db, "desk@example.com", &id);
        committed.add(a);
        delivered.add(b);

        let before = floor_count();
        let to = "floor@example.com";
        let floor_id = format!("pfloor-{n}-{}", std::process::id());
        let accepted = smtp.send(
            CUSTOMER,
            to,
            &customer_mail(CUSTOMER, to, &floor_id, &floor_id),
        );
        floor.add(time_until(accepted, Duration::from_millis(1), || {
            floor_count() > before
        }));
        if (n + 1) % 50 == 0 {
            eprintln!("push_latency pipe: {} of {samples}", n + 1);
        }
    }
    let _ = rt.block_on(inbox.logout());
    print_table(
        "Pipe: `postdesk deliver` as Postfix's pipe(8) transport for desk@",
        &[&committed, &delivered, &floor],
    );
    drop(stack);
    let _ = std::fs::remove_dir_all(&work);
}

fn fail(message: &str) -> ! {
    eprintln!("push_latency: {message}");
    std::process::exit(2);
}

fn load() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "load average {} on {cores} cores",
        loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "push_latency: a measurement, not a test; run `cargo bench --bench push_latency` as root"
        );
        return;
    }
    let samples: usize = std::env::var("PD_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mode = std::env::var("PD_MODE").unwrap_or_else(|_| "both".into());
    if !["idle", "pipe", "both"].contains(&mode.as_str()) {
        fail("PD_MODE is idle, pipe or both");
    }
    let bin = std::env::var_os("PD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_postdesk")));
    // Short: the stacks' unix sockets live below it.
    let root = PathBuf::from(format!("/tmp/pdpl-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("bench dir");
    println!(
        "push_latency: mode {mode}, {samples} samples, daemon {}, {} at start",
        bin.display(),
        load()
    );
    if mode != "pipe" {
        idle_mode(&root, &bin, samples);
    }
    if mode != "idle" {
        pipe_mode(&root, &bin, samples);
    }
    println!("\n{} at the end", load());
    let _ = std::fs::remove_dir_all(&root);
}
