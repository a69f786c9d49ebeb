//! Push latency on the loopback mail stack: how long from the SMTP server accepting a
//! customer's mail until (a) postdesk committed the ticket and (b) `ticket_received` is in the
//! customer's IMAP mailbox; and the floor, SMTP accept → `EXISTS` seen by a minimal IDLE
//! client on the same stack (Dovecot batches its change notifications).
//!
//! Needs a running stack (`eval "$(tests/mailstack/start.sh)"`), nothing else reading
//! `support@` meanwhile, and runs only under `cargo bench --bench push_latency` (plain `cargo
//! test --all-targets` just prints a note). The daemon is the binary cargo built for the bench
//! (release settings), or `PD_BIN=/path/to/postdesk`. `PD_SAMPLES` sets the count (50).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_imap::Session;
use tokio::net::TcpStream;

type Imap = Session<TcpStream>;

struct Env {
    smtp_port: u16,
    imap_port: u16,
    ca: PathBuf,
}

fn env() -> Result<Env, String> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let port = |name: &str| -> Result<u16, String> {
        var(name)?
            .parse()
            .map_err(|_| format!("{name} is not a port"))
    };
    Ok(Env {
        smtp_port: port("POSTDESK_SMTP_PORT")?,
        imap_port: port("POSTDESK_IMAP_PORT")?,
        ca: PathBuf::from(var("POSTDESK_CA_CERT")?),
    })
}

fn send(env: &Env, from: &str, to: &str, subject: &str, n: usize) {
    use lettre::Transport;
    let raw = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <bench-{n}-{}@c.example>\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nLatency sample {n}.\r\n",
        std::process::id()
    );
    let transport = lettre::SmtpTransport::builder_dangerous("127.0.0.1")
        .port(env.smtp_port)
        .build();
    let envelope = lettre::address::Envelope::new(
        Some(from.parse().expect("from")),
        vec![to.parse().expect("to")],
    )
    .expect("envelope");
    transport
        .send_raw(&envelope, raw.as_bytes())
        .expect("SMTP accepted the mail");
}

async fn login(env: &Env, user: &str) -> Imap {
    let tcp = TcpStream::connect(("127.0.0.1", env.imap_port))
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

async fn exists(session: &mut Imap) -> u32 {
    session.examine("INBOX").await.expect("EXAMINE").exists
}

struct Stats {
    name: &'static str,
    samples: Vec<f64>,
}

impl Stats {
    fn print(&mut self) {
        self.samples.sort_by(f64::total_cmp);
        let n = self.samples.len();
        if n == 0 {
            println!("{:<50} no samples", self.name);
            return;
        }
        let median = if n % 2 == 0 {
            (self.samples[n / 2 - 1] + self.samples[n / 2]) / 2.0
        } else {
            self.samples[n / 2]
        };
        let p95 = self.samples[(n * 95).div_ceil(100) - 1];
        println!(
            "{:<50} n={n:<3} min {:>4.0} ms  median {:>4.0} ms  p95 {:>4.0} ms  max {:>4.0} ms",
            self.name,
            self.samples[0],
            median,
            p95,
            self.samples[n - 1]
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
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

fn config(env: &Env) -> String {
    format!(
        r#"[general]
data_dir = "var"
base_url = "http://127.0.0.1:8080"
language = "en"
support_address = "support@example.com"
support_name = "Example Support"

[source]
kind = "imap"
host = "127.0.0.1"
port = {imap}
tls = "starttls"
ca_file = "{ca}"
username = "support@example.com"
password = "secret-support"
processed_mailbox = "Processed"
failed_mailbox = "Failed"

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

[[agents]]
email = "agent1@example.com"
name = "Anna Agent"
"#,
        imap = env.imap_port,
        smtp = env.smtp_port,
        ca = env.ca.display()
    )
}

fn ticket_count(db: &Path) -> i64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT count(*) FROM tickets", [], |r| r.get(0)))
        .unwrap_or(0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("push_latency: a measurement, not a test; run `cargo bench --bench push_latency` with the mail stack up");
        return;
    }
    let env = match env() {
        Ok(env) => env,
        Err(e) => {
            eprintln!(
                "push_latency: {e}; start the stack first: eval \"$(tests/mailstack/start.sh)\""
            );
            std::process::exit(2);
        }
    };
    let samples: usize = std::env::var("PD_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let bin = std::env::var_os("PD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_postdesk")));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.toml"), config(&env)).expect("config");
    let log = std::fs::File::create(dir.path().join("daemon.log")).expect("log");
    let daemon = Daemon(
        Command::new(&bin)
            .arg("run")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .env_remove("POSTDESK_CONFIG")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postdesk"),
    );
    let db = dir.path().join("var/postdesk.db");
    println!(
        "push_latency: {} samples, daemon {}",
        samples,
        bin.display()
    );

    // Let the daemon log in, drain anything old and settle in IDLE.
    std::thread::sleep(Duration::from_secs(3));
    let customer = "customer1@example.com";
    let mut inbox = rt.block_on(login(&env, customer));
    let mut committed = Stats {
        name: "SMTP accept -> ticket committed",
        samples: Vec::new(),
    };
    let mut delivered = Stats {
        name: "SMTP accept -> ticket_received in customer INBOX",
        samples: Vec::new(),
    };
    for n in 0..samples {
        let tickets_before = ticket_count(&db);
        let mail_before = rt.block_on(exists(&mut inbox));
        send(
            &env,
            "customer1+bench@example.com",
            "support@example.com",
            &format!("Latency {n}"),
            n,
        );
        let accepted = Instant::now();
        let deadline = accepted + Duration::from_secs(30);
        let (mut ticket_at, mut mail_at) = (None, None);
        while ticket_at.is_none() || mail_at.is_none() {
            assert!(
                Instant::now() < deadline,
                "sample {n}: no answer within 30 s"
            );
            if ticket_at.is_none() && ticket_count(&db) > tickets_before {
                ticket_at = Some(accepted.elapsed());
            }
            if mail_at.is_none() && rt.block_on(exists(&mut inbox)) > mail_before {
                mail_at = Some(accepted.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        committed.samples.push(ticket_at.map_or(0.0, ms));
        delivered.samples.push(mail_at.map_or(0.0, ms));
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(daemon);

    // The floor: a minimal IDLE client on customer2's INBOX.
    let mut floor = Stats {
        name: "SMTP accept -> IDLE EXISTS (minimal client)",
        samples: Vec::new(),
    };
    let mut session = rt.block_on(login(&env, "customer2@example.com"));
    rt.block_on(session.select("INBOX")).expect("SELECT");
    for n in 0..samples {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut idle = session.idle();
        rt.block_on(idle.init()).expect("IDLE");
        let smtp_port = env.smtp_port;
        std::thread::spawn(move || {
            let env = Env {
                smtp_port,
                imap_port: 0,
                ca: PathBuf::new(),
            };
            send(
                &env,
                "customer1@example.com",
                "customer2@example.com",
                &format!("Idle floor {n}"),
                n,
            );
            let _ = tx.send(Instant::now());
        });
        let got = rt.block_on(async {
            loop {
                let (wait, _stop) = idle.wait_with_timeout(Duration::from_secs(30));
                match wait.await.expect("IDLE wait") {
                    async_imap::extensions::idle::IdleResponse::NewData(data) => {
                        if format!("{:?}", data.parsed()).contains("Exists") {
                            break Instant::now();
                        }
                    }
                    other => panic!("sample {n}: IDLE ended without EXISTS: {other:?}"),
                }
            }
        });
        let accepted = rx.recv().expect("sender thread");
        let latency = if got >= accepted {
            ms(got - accepted)
        } else {
            -ms(accepted - got)
        };
        floor.samples.push(latency);
        session = rt.block_on(idle.done()).expect("DONE");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = rt.block_on(session.logout());
    let _ = rt.block_on(inbox.logout());

    println!();
    committed.print();
    delivered.print();
    floor.print();
}
