//! Maildir and `postdesk deliver` throughput, and the daemon's memory meanwhile.
//!
//! A backlog of `PD_MAILS` (10,000) mails (`mailgen`: a third real-world corpus messages
//! with fresh Message-IDs, the rest generated customer mail, one in five of those with a
//! 20–300 KB attachment) is written into the Maildir's `new/` before the daemon starts;
//! the figure is the time from the daemon's first handled mail until `new/` is empty and
//! every mail has its record in the database, with replies going to the file transport
//! (so SMTP speed is not part of it). Then `PD_DELIVER` (500) of the same mails are fed one
//! at a time to `postdesk deliver` (a process per mail, as an MTA's pipe does).
//!
//! Run: `cargo bench --locked --bench maildir_throughput` (release build; no mail stack).
//! `PD_BIN=/path/to/postdesk` measures another build. Under `cargo test` it does one quick
//! pass over 200 mails as a smoke test.

#[allow(dead_code)]
mod mailgen;
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{count_files, env_num};

fn inbound_count(db: &Path) -> i64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT count(*) FROM inbound", [], |r| r.get(0)))
        .unwrap_or(0)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let count = if bench {
        env_num("PD_MAILS", 10_000)
    } else {
        200
    };
    let deliver_count = if bench {
        env_num("PD_DELIVER", 500)
    } else {
        20
    };
    let bin = support::postdesk_bin();

    let mails = mailgen::backlog(count, 7);
    println!("maildir_throughput: {}", mailgen::describe(&mails));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port();
    std::fs::write(
        dir.path().join("config.toml"),
        support::daemon_config(port, ""),
    )
    .expect("config");
    let new = dir.path().join("var/inbox/new");
    let cur = dir.path().join("var/inbox/cur");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(dir.path().join("var/inbox").join(sub)).expect("maildir");
    }
    for (n, raw) in mails.iter().enumerate() {
        std::fs::write(new.join(format!("1700000000.M{n:06}P1.bench")), raw).expect("write");
    }
    let db = dir.path().join("var/postdesk.db");

    let spawned = Instant::now();
    let daemon = support::Daemon::start(&bin, dir.path(), port, &[]).expect("start postdesk");
    let pid = daemon.pid();
    let deadline = spawned + Duration::from_secs(600);
    let mut first = None;
    let mut peak_rss = 0u64;
    let mut samples = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "the backlog was not drained in 10 minutes"
        );
        if let Some((rss, hwm)) = mailgen::rss_kb(pid) {
            peak_rss = peak_rss.max(hwm);
            samples.push(rss);
        }
        let handled = count_files(&cur);
        if first.is_none() && handled > 0 {
            first = Some(Instant::now());
        }
        if handled == count && count_files(&new) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = Instant::now();
    let first = first.unwrap_or(done);
    let stored = inbound_count(&db);
    assert_eq!(stored as usize, count, "every mail has its record");
    // Steady: after the backlog, with the outbox drained.
    let outbox = dir.path().join("var/outbox");
    let settle = Instant::now();
    let mut last = usize::MAX;
    while settle.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(500));
        let now = count_files(&outbox);
        if now == last {
            break;
        }
        last = now;
    }
    std::thread::sleep(Duration::from_secs(2));
    let (steady, hwm) = mailgen::rss_kb(pid).unwrap_or((0, 0));
    drop(daemon);

    let secs = (done - first).as_secs_f64();
    println!(
        "maildir: {count} mails in {secs:.2} s = {:.0} msg/s (start-up to first mail {:.0} ms, {} replies written)",
        count as f64 / secs,
        (first - spawned).as_secs_f64() * 1000.0,
        last
    );
    println!(
        "daemon RSS: peak {:.1} MB, steady after the backlog {:.1} MB",
        peak_rss.max(hwm) as f64 / 1024.0,
        steady as f64 / 1024.0
    );

    // `postdesk deliver`, a process per mail, on a fresh database.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let config2 = dir2.path().join("config.toml");
    std::fs::write(&config2, support::daemon_config(support::free_port(), "")).expect("config");
    let mut times = Vec::new();
    let started = Instant::now();
    for raw in mails.iter().take(deliver_count) {
        let t = Instant::now();
        let mut child = Command::new(&bin)
            .arg("deliver")
            .arg("--config")
            .arg(&config2)
            .env_remove("POSTDESK_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start deliver");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(raw).expect("feed deliver");
        }
        let status = child.wait().expect("deliver");
        assert!(status.success(), "deliver failed: {status}");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let total = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let pct = |p: usize| times[(times.len() * p).div_ceil(100).max(1) - 1];
    println!(
        "deliver: {deliver_count} mails one process each in {total:.2} s = {:.0} msg/s; per mail p50 {:.1} ms, p99 {:.1} ms",
        deliver_count as f64 / total,
        pct(50),
        pct(99)
    );
    assert_eq!(
        inbound_count(&dir2.path().join("var/postdesk.db")) as usize,
        deliver_count
    );
}
