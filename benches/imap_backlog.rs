//! Backlog intake over IMAP, beside the physical limit of the path, and the daemon's memory.
//!
//! For each backlog size in `PD_MAILS` (default `1000,10000`): the backlog (`mailgen`: a third
//! real-world corpus messages with fresh Message-IDs, the rest generated customer mail, one in
//! five of those with a 20–300 KB attachment) is APPENDed to `support@`'s INBOX on a private
//! loopback Dovecot + Postfix (tests/mailstack/start.sh) before the daemon starts. Then:
//!
//! - floor: a minimal client (one connection, `EXAMINE INBOX`, one
//!   `UID FETCH 1:* (UID BODY.PEEK[])` that only counts the bytes) — the speed of this path
//!   with nothing done to the mail; best of 3;
//! - postdesk: `postdesk run` (release) from start to every mail having its record in the
//!   database and INBOX empty (moved to `Processed`/`Failed`); replies go to the file transport
//!   so SMTP is not part of the figure;
//! - the daemon's RSS: peak (VmHWM) and steady (after the backlog, once the outbox is drained).
//!
//! Plain IMAP on loopback for both (no TLS), so the comparison is the pipeline, not the cipher.
//!
//! Run (root; installs and starts its own stack and stops it after):
//! `cargo bench --locked --bench imap_backlog`. `PD_BIN=/path/to/postdesk` measures another
//! build. Under `cargo test` it only prints a note (it needs root and takes minutes).

#[allow(dead_code)]
mod mailgen;
mod stack;
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use support::count_files;
use tokio::net::TcpStream;

type Imap = async_imap::Session<TcpStream>;

const USER: &str = "support@example.com";

async fn login(port: u16) -> Imap {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect IMAP");
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.expect("greeting");
    client
        .login(USER, "secret-support")
        .await
        .map_err(|(e, _)| e)
        .expect("IMAP login")
}

async fn messages(session: &mut Imap, mailbox: &str) -> u32 {
    session
        .status(mailbox, "(MESSAGES)")
        .await
        .map(|m| m.exists)
        .unwrap_or(0)
}

async fn append_all(port: u16, mails: &[Vec<u8>]) -> f64 {
    let mut session = login(port).await;
    let started = Instant::now();
    for raw in mails {
        session
            .append("INBOX", None, None, raw)
            .await
            .expect("APPEND");
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = session.logout().await;
    secs
}

/// One `UID FETCH 1:* (UID BODY.PEEK[])` of INBOX: (mails, bytes, seconds).
async fn raw_fetch(port: u16) -> (usize, usize, f64) {
    let mut session = login(port).await;
    session.examine("INBOX").await.expect("EXAMINE");
    let started = Instant::now();
    let mut count = 0;
    let mut bytes = 0;
    {
        let mut stream = session
            .uid_fetch("1:*", "(UID BODY.PEEK[])")
            .await
            .expect("UID FETCH");
        while let Some(fetch) = stream.try_next().await.expect("FETCH response") {
            if let Some(body) = fetch.body() {
                count += 1;
                bytes += body.len();
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = session.logout().await;
    (count, bytes, secs)
}

/// The benches' daemon config, reading `support@`'s INBOX over plain IMAP on loopback.
fn config(imap_port: u16, web_port: u16) -> String {
    support::daemon_config(web_port, "").replace(
        "[source]\nkind = \"maildir\"\npath = \"var/inbox\"\n",
        &format!(
            "[source]\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {imap_port}\ntls = \"none\"\n\
             username = \"{USER}\"\npassword = \"secret-support\"\n\
             processed_mailbox = \"Processed\"\nfailed_mailbox = \"Failed\"\n"
        ),
    )
}

fn inbound_count(db: &Path) -> usize {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT count(*) FROM inbound", [], |r| r.get::<_, i64>(0)))
        .map(|n| n as usize)
        .unwrap_or(0)
}

struct Run {
    secs: f64,
    startup_ms: f64,
    peak_kb: u64,
    steady_kb: u64,
}

async fn run_daemon(bin: &Path, imap_port: u16, count: usize) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port();
    std::fs::write(dir.path().join("config.toml"), config(imap_port, port)).expect("config");
    let db = dir.path().join("var/postdesk.db");
    let mut watcher = login(imap_port).await;
    let spawned = Instant::now();
    let daemon = support::Daemon::start(bin, dir.path(), port, &[]).expect("start postdesk");
    let pid = daemon.pid();
    let mut peak_kb = 0;
    let mut first = None;
    let mut last_check = Instant::now();
    loop {
        assert!(
            spawned.elapsed() < Duration::from_secs(900),
            "the backlog was not drained in 15 minutes; see {}",
            dir.path().join("daemon.log").display()
        );
        if let Some((_, hwm)) = mailgen::rss_kb(pid) {
            peak_kb = peak_kb.max(hwm);
        }
        let stored = inbound_count(&db);
        if first.is_none() && stored > 0 {
            first = Some(spawned.elapsed());
        }
        if stored >= count && last_check.elapsed() > Duration::from_millis(20) {
            last_check = Instant::now();
            if messages(&mut watcher, "INBOX").await == 0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = spawned.elapsed().as_secs_f64();
    let moved = messages(&mut watcher, "Processed").await + messages(&mut watcher, "Failed").await;
    assert_eq!(moved as usize, count, "every mail moved out of INBOX");
    assert_eq!(inbound_count(&db), count, "every mail has its record");
    // Steady: after the backlog, once the outbox has been drained.
    let outbox = dir.path().join("var/outbox");
    let mut last = usize::MAX;
    for _ in 0..240 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = count_files(&outbox);
        if now == last {
            break;
        }
        last = now;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (steady_kb, hwm) = mailgen::rss_kb(pid).unwrap_or((0, 0));
    drop(daemon);
    let _ = watcher.logout().await;
    Run {
        secs,
        startup_ms: first.unwrap_or_default().as_secs_f64() * 1000.0,
        peak_kb: peak_kb.max(hwm),
        steady_kb,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("imap_backlog: run with `cargo bench --bench imap_backlog` (needs root; minutes)");
        return;
    }
    let sizes: Vec<usize> = std::env::var("PD_MAILS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let bin = support::postdesk_bin();
    let stack = stack::Stack::start(Path::new("/tmp/pdms-backlog"), &[]).expect("mail stack");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for count in sizes {
        for folder in ["INBOX", "Processed", "Failed"] {
            let _ = stack.doveadm(&["expunge", "-u", USER, "mailbox", folder, "all"]);
        }
        let mails = mailgen::backlog(count, 11);
        println!("imap_backlog: {}", mailgen::describe(&mails));
        let appended = runtime.block_on(append_all(stack.imap_port, &mails));
        println!("  APPEND: {count} mails in {appended:.1} s");
        let mut floors: Vec<(usize, usize, f64)> = (0..3)
            .map(|_| runtime.block_on(raw_fetch(stack.imap_port)))
            .collect();
        floors.sort_by(|a, b| a.2.total_cmp(&b.2));
        let (fetched, bytes, floor) = floors[0];
        assert_eq!(fetched, count, "the raw fetch saw every mail");
        let run = runtime.block_on(run_daemon(&bin, stack.imap_port, count));
        let speed = count as f64 / run.secs;
        let raw = count as f64 / floor;
        println!(
            "  floor, raw UID FETCH BODY.PEEK[] (best of 3): {count} mails, {:.0} MB in {floor:.2} s = {raw:.0} msg/s",
            bytes as f64 / 1e6
        );
        println!(
            "  postdesk: {count} mails in {:.2} s (first record {:.0} ms after start) = {speed:.0} msg/s = {:.2} x raw fetch",
            run.secs,
            run.startup_ms,
            speed / raw
        );
        println!(
            "  daemon RSS: peak {:.1} MB, steady after the backlog {:.1} MB",
            run.peak_kb as f64 / 1024.0,
            run.steady_kb as f64 / 1024.0
        );
    }
    drop(stack);
}
