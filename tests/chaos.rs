//! Fault injection (issue 8): the real `postdesk` binary against a private Dovecot (IMAP) and
//! Postfix (SMTP) on 127.0.0.1, with faults injected while it works: `kill -9` at random
//! moments, the SMTP server stopped, Dovecot restarted and its connection cut mid-`FETCH` by a
//! proxy, the database's disk full and the data directory read-only, and an autoresponder
//! that answers every mail. Each test starts (and stops) a mail stack of its own, because it
//! stops, restarts or proxies the servers; with `POSTDESK_REQUIRE_MAILSTACK=1` a stack that
//! cannot start fails the test.
//!
//! Run: `cargo test --release --test chaos -- --test-threads=1 --nocapture` (the figures are
//! printed). The random moments come from a seeded generator; the seed is printed, and
//! `CHAOS_SEED=N` repeats a run.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::mailstack::{nonce, start_private, Stack};
use common::proxy::CuttingProxy;
use common::robot::{outbox_to, robot_result, run_robot};
use common::tmpfs::Tmpfs;
use common::{mail, wait_until, Daemon, Scratch};

/// A small seeded generator (splitmix64): the same seed gives the same kill moments.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// The tests take turns: each loads both cores on its own (the figures stay comparable, and
/// `--test-threads` need not be given).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

const AGENT: &str = "agent1@example.com";
const SUPPORT: &str = "support@example.com";

/// The run's seed: `CHAOS_SEED`, else the clock. Printed so that a failure can be repeated.
fn seed(test: &str) -> u64 {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("{test}: seed {seed} (CHAOS_SEED={seed} repeats it)");
    seed
}

/// Customer `n`'s address: plus-addresses of customer1 and customer2 (one address per mail,
/// so the hourly limit on automatic replies per address never applies).
fn customer(n: usize) -> String {
    format!("customer{}+c{n}@example.com", 1 + n % 2)
}

/// Writes `count` customer mails (new requests, 0.5-6 KB) into `dir`, one file each.
fn write_mails(dir: &Path, run: &str, count: usize, rng: &mut Rng) {
    for n in 0..count {
        let filler =
            "All work and no play makes Jack a dull boy. ".repeat(10 + rng.below(130) as usize);
        let raw = mail(
            &customer(n),
            &format!("Chaos {run} #{n:04}"),
            &format!("chaos-{run}-{n}@c.example"),
            "",
            &format!("Mail number {n}.\r\n{filler}"),
        );
        std::fs::write(dir.join(format!("{n:05}")), raw).expect("write mail");
    }
}

/// Appends `count` fresh customer mails to support's INBOX; returns the run's tag.
fn append_mails(stack: &Stack, count: usize, rng: &mut Rng) -> String {
    let run = nonce();
    let dir = tempfile::tempdir().expect("dir");
    write_mails(dir.path(), &run, count, rng);
    stack.append_dir(SUPPORT, "INBOX", dir.path());
    run
}

/// How the daemon sends: through the stack's Postfix, or as files (tests about intake).
#[derive(Clone, Copy, PartialEq)]
enum Outbound {
    Smtp,
    Files,
}

fn config(stack: &Stack, outbound: Outbound, extra: &str) -> String {
    let mut config = stack.imap_config("en");
    if outbound == Outbound::Files {
        let start = config.find("[smtp]").expect("smtp section");
        let end = config[start..].find("[[agents]]").expect("agents") + start;
        config.replace_range(start..end, "[smtp]\nkind = \"file\"\n\n");
    }
    config.replace("[[agents]]", &format!("{extra}\n[[agents]]"))
}

/// The daemon's database, read-only (`None` before the daemon created it).
fn database(path: &Path) -> Option<rusqlite::Connection> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let conn = rusqlite::Connection::open_with_flags(path, flags).ok()?;
    conn.busy_timeout(Duration::from_secs(5)).ok()?;
    Some(conn)
}

fn count(db: &Path, sql: &str) -> i64 {
    database(db)
        .and_then(|c| c.query_row(sql, [], |row| row.get(0)).ok())
        .unwrap_or(0)
}

fn strings(db: &Path, sql: &str) -> Vec<String> {
    let Some(conn) = database(db) else {
        return Vec::new();
    };
    let Ok(mut statement) = conn.prepare(sql) else {
        return Vec::new();
    };
    statement
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .unwrap_or_default()
}

/// What intake made of the mails: tickets, distinct ticket subjects, thread entries and
/// inbound records.
fn intake_counts(db: &Path) -> (i64, i64, i64, i64) {
    (
        count(db, "SELECT count(*) FROM tickets"),
        count(db, "SELECT count(DISTINCT subject) FROM tickets"),
        count(db, "SELECT count(*) FROM messages"),
        count(db, "SELECT count(*) FROM inbound"),
    )
}

/// Outbox rows waiting or in flight.
fn outbox_open(db: &Path) -> i64 {
    count(
        db,
        "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')",
    )
}

/// The outbox rows claimed and not marked sent by the (killed) process `pid`: the mails in
/// flight at its kill (the claim's owner is `boot_id/pid_namespace/pid/start_time`).
fn claimed_by(db: &Path, pid: u32) -> Vec<String> {
    strings(
        db,
        &format!(
            "SELECT message_id FROM outbox WHERE status = 'sending' AND lease_owner LIKE '%/{pid}/%'"
        ),
    )
}

/// The Message-ID in a header block, without angle brackets.
fn message_id(headers: &str) -> Option<String> {
    let unfolded = headers.replace("\n ", " ").replace("\n\t", " ");
    unfolded.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case("message-id")
            .then(|| value.trim().trim_matches(['<', '>']).to_string())
    })
}

/// The queue ID the stack's Postfix gave a mail when it accepted it over SMTP (from its
/// `Received: … by mx.example.com (Postfix) with ESMTP[S] id QUEUEID` header).
fn smtp_queue_id(headers: &str) -> Option<String> {
    let unfolded = headers.replace("\n ", " ").replace("\n\t", " ");
    unfolded.lines().find_map(|line| {
        let after = line.split("(Postfix) with ").nth(1)?;
        let id = after.split(" id ").nth(1)?.split_whitespace().next()?;
        Some(id.trim_end_matches(';').to_string())
    })
}

/// How many copies of each Message-ID the INBOXes of `addresses` hold.
fn delivered(stack: &Stack, addresses: &[&str]) -> BTreeMap<String, usize> {
    let mut copies = BTreeMap::new();
    for address in addresses {
        for headers in stack.headers(address, "INBOX") {
            if let Some(id) = message_id(&headers) {
                *copies.entry(id).or_insert(0) += 1;
            }
        }
    }
    copies
}

/// Waits until every one of `expected` is in a mailbox, lets late copies arrive, and returns
/// the copies per Message-ID.
fn wait_delivered(
    stack: &Stack,
    addresses: &[&str],
    expected: &BTreeSet<String>,
) -> BTreeMap<String, usize> {
    wait_until(
        "every notification is in its recipient's mailbox",
        180,
        || {
            let got = delivered(stack, addresses);
            expected.iter().all(|id| got.contains_key(id))
        },
    );
    // Postfix may still hold a second copy in its queue: give it time to deliver it.
    std::thread::sleep(Duration::from_secs(2));
    delivered(stack, addresses)
}

fn mailbox_count(stack: &Stack, address: &str, folder: &str) -> usize {
    stack.headers(address, folder).len()
}

fn log_of(scratch: &Scratch) -> String {
    std::fs::read_to_string(scratch.path("daemon.log")).unwrap_or_default()
}

#[test]
fn kill_9_at_random_moments_during_imap_intake_and_smtp_sending() {
    let _turn = turn();
    let Some(stack) = start_private("k9") else {
        return;
    };
    const MAILS: usize = 1000;
    const KILLS: usize = 50;
    let seed = seed("kill -9");
    let mut rng = Rng::new(seed);
    append_mails(&stack, MAILS, &mut rng);
    let scratch = Scratch::with_config(&config(&stack, Outbound::Smtp, ""));
    let db = scratch.path("var/postdesk.db");
    let started = Instant::now();
    // Every outbox row that was claimed and not yet marked sent when a kill struck: the
    // server may have accepted it (RFC 1047), so it is the only kind of mail that may arrive
    // twice.
    // Per row, at how many kills it was in flight.
    let mut in_flight: BTreeMap<String, usize> = BTreeMap::new();
    let mut most_at_one_kill = 0;
    for _ in 0..KILLS {
        let daemon = Daemon::start(&scratch);
        std::thread::sleep(Duration::from_millis(100 + rng.below(600)));
        let pid = daemon.child.id();
        daemon.kill_hard();
        let rows = claimed_by(&db, pid);
        most_at_one_kill = most_at_one_kill.max(rows.len());
        for row in rows {
            *in_flight.entry(row).or_insert(0) += 1;
        }
    }
    let (tickets_at_last_kill, ..) = intake_counts(&db);
    let sent_at_last_kill = count(&db, "SELECT count(*) FROM outbox WHERE status = 'sent'");
    let daemon = Daemon::start(&scratch);
    wait_until(
        "every mail is a ticket and the outbox is empty",
        240,
        || intake_counts(&db).0 == MAILS as i64 && outbox_open(&db) == 0,
    );
    wait_until("support's INBOX is empty", 30, || {
        mailbox_count(&stack, SUPPORT, "INBOX") == 0
    });
    let done = started.elapsed();
    daemon.stop();

    let (tickets, subjects, entries, inbound) = intake_counts(&db);
    assert_eq!(tickets, MAILS as i64, "0 lost, 0 doubled tickets");
    assert_eq!(subjects, MAILS as i64, "one ticket per mail");
    assert_eq!(entries, MAILS as i64, "one thread entry per mail");
    assert_eq!(inbound, MAILS as i64, "one inbound record per mail");
    let sent = strings(&db, "SELECT message_id FROM outbox WHERE status = 'sent'");
    assert_eq!(
        sent.len(),
        2 * MAILS,
        "every notification sent, none failed"
    );
    let expected: BTreeSet<String> = sent.into_iter().collect();
    let mailboxes = ["customer1@example.com", "customer2@example.com", AGENT];
    let copies = wait_delivered(&stack, &mailboxes, &expected);
    let strangers: Vec<&String> = copies.keys().filter(|id| !expected.contains(*id)).collect();
    assert!(strangers.is_empty(), "mail we never queued: {strangers:?}");
    let doubled: Vec<(&String, &usize)> = copies.iter().filter(|(_, n)| **n > 1).collect();
    let duplicates: usize = doubled.iter().map(|(_, n)| *n - 1).sum();
    println!(
        "kill -9: {MAILS} mails, {KILLS} kills (at the last: {tickets_at_last_kill} tickets, \
         {sent_at_last_kill} mails sent), done {done:.1?} after the first start; \
         {} notifications delivered, {duplicates} duplicates, {} rows in flight at a kill \
         (at most {most_at_one_kill} at one)",
        expected.len(),
        in_flight.len()
    );
    for (id, n) in &doubled {
        let kills = in_flight.get(*id).copied().unwrap_or(0);
        assert!(
            **n - 1 <= kills,
            "{id} arrived {n} times but was in flight at only {kills} kills"
        );
    }
    assert!(duplicates <= in_flight.values().sum::<usize>());
}

#[test]
fn smtp_server_stopped_under_load_every_notification_is_sent_exactly_once() {
    let _turn = turn();
    let Some(stack) = start_private("smtp") else {
        return;
    };
    const MAILS: usize = 300;
    let mut rng = Rng::new(seed("smtp outage"));
    append_mails(&stack, MAILS, &mut rng);
    let scratch = Scratch::with_config(&config(&stack, Outbound::Smtp, ""));
    let db = scratch.path("var/postdesk.db");
    let daemon = Daemon::start(&scratch);
    let sent = || count(&db, "SELECT count(*) FROM outbox WHERE status = 'sent'");
    wait_until("the outbox is sending", 60, || sent() >= 50);
    stack.postfix(false);
    let sent_before = sent();
    std::thread::sleep(Duration::from_secs(8));
    let during = sent() - sent_before;
    let retried = count(
        &db,
        "SELECT count(*) FROM outbox WHERE last_error IS NOT NULL",
    );
    stack.postfix(true);
    wait_until(
        "every mail is a ticket and the outbox is empty",
        120,
        || intake_counts(&db).0 == MAILS as i64 && outbox_open(&db) == 0,
    );
    daemon.stop();
    assert_eq!(during, 0, "nothing can be sent while the server is down");
    assert!(
        retried > 0,
        "the outage was felt: sends failed and were retried"
    );
    let failed = count(&db, "SELECT count(*) FROM outbox WHERE status <> 'sent'");
    assert_eq!(failed, 0, "no notification given up");
    let expected: BTreeSet<String> = strings(&db, "SELECT message_id FROM outbox")
        .into_iter()
        .collect();
    assert_eq!(expected.len(), 2 * MAILS);
    let mailboxes = ["customer1@example.com", "customer2@example.com", AGENT];
    let copies = wait_delivered(&stack, &mailboxes, &expected);
    // Per notification, the Postfix queue IDs of its copies: one ID means postdesk handed it
    // over once; a second copy with the same ID is Postfix delivering its own queue file again
    // (it was stopped while handing that file to Dovecot), not a second send.
    let mut accepted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for address in mailboxes {
        for headers in stack.headers(address, "INBOX") {
            if let Some(id) = message_id(&headers) {
                accepted
                    .entry(id)
                    .or_default()
                    .push(smtp_queue_id(&headers).unwrap_or_default());
            }
        }
    }
    let sent_twice: Vec<_> = accepted
        .iter()
        .filter(|(_, ids)| ids.iter().collect::<BTreeSet<_>>().len() > 1)
        .collect();
    let redelivered: usize = copies.values().map(|n| n - 1).sum();
    println!(
        "SMTP outage: Postfix stopped 8 s after {sent_before} of {} mails were sent; {retried} \
         mails failed and were retried; {} delivered, {} sent twice by postdesk; {redelivered} \
         extra copies that Postfix itself delivered again from its queue (stopped mid-LMTP)",
        2 * MAILS,
        copies.len(),
        sent_twice.len()
    );
    assert!(
        accepted.values().flatten().all(|q| !q.is_empty()),
        "every copy names the Postfix queue ID it was accepted under"
    );
    assert!(
        sent_twice.is_empty(),
        "handed to SMTP twice: {sent_twice:?}"
    );
    assert_eq!(copies.len(), 2 * MAILS, "each notification delivered");
}

#[test]
fn imap_restarted_and_cut_mid_fetch_reconnects_and_loses_or_doubles_nothing() {
    let _turn = turn();
    let Some(stack) = start_private("cut") else {
        return;
    };
    const MAILS: usize = 600;
    const CUTS: usize = 5;
    let mut rng = Rng::new(seed("IMAP cuts"));
    append_mails(&stack, MAILS, &mut rng);
    // The first connection is left alone (the Dovecot restart ends it); each of the next
    // CUTS is cut inside the literal of its k-th fetched message.
    let plan: Vec<Option<usize>> = std::iter::once(None)
        .chain((0..CUTS).map(|_| Some(1 + rng.below(120) as usize)))
        .collect();
    let proxy = CuttingProxy::start(stack.imap_port, plan.clone());
    // Plain IMAP to the proxy (loopback), so that the proxy sees where a FETCH literal is.
    let plain = config(&stack, Outbound::Files, "");
    let config = plain.replace(
        &format!("port = {}\ntls = \"starttls\"", stack.imap_port),
        &format!("port = {}\ntls = \"none\"", proxy.port),
    );
    assert_ne!(config, plain, "the daemon goes through the proxy");
    let scratch = Scratch::with_config(&config);
    let db = scratch.path("var/postdesk.db");
    let daemon = Daemon::start(&scratch);
    // Dovecot goes down (1 s) as soon as intake has begun; the cuts come before and after.
    wait_until("intake has begun", 60, || intake_counts(&db).0 >= 1);
    let mut tickets_at_restart = 0;
    stack.restart_dovecot(|| {
        tickets_at_restart = intake_counts(&db).0;
        std::thread::sleep(Duration::from_secs(1));
    });
    wait_until("every mail is a ticket", 120, || {
        intake_counts(&db).0 == MAILS as i64
    });
    wait_until("support's INBOX is empty", 30, || {
        mailbox_count(&stack, SUPPORT, "INBOX") == 0
    });
    wait_until("every notification is written", 30, || {
        outbox_open(&db) == 0
    });
    daemon.stop();
    let cuts = proxy.cuts.load(std::sync::atomic::Ordering::Relaxed);
    let connections = proxy.connections.load(std::sync::atomic::Ordering::Relaxed);
    let processed: Vec<String> = stack
        .headers(SUPPORT, "Processed")
        .iter()
        .filter_map(|h| message_id(h))
        .collect();
    let distinct: BTreeSet<&String> = processed.iter().collect();
    let (tickets, subjects, entries, inbound) = intake_counts(&db);
    let reconnects = log_of(&scratch)
        .matches("IMAP connection failed; reconnecting")
        .count();
    println!(
        "IMAP faults: {MAILS} mails, {cuts} connections cut mid-FETCH (plan {plan:?}), \
         Dovecot down at {tickets_at_restart} tickets, \
         {connections} connections, {reconnects} reconnects logged; {tickets} tickets, \
         {entries} entries, {} in Processed",
        processed.len()
    );
    assert!(
        tickets_at_restart < MAILS as i64,
        "Dovecot restarted mid-intake"
    );
    assert!(
        reconnects > CUTS,
        "a reconnect after every cut and after the restart"
    );
    assert_eq!(
        cuts, CUTS,
        "every planned cut happened inside a FETCH literal"
    );
    assert_eq!(tickets, MAILS as i64, "0 lost, 0 doubled");
    assert_eq!(subjects, MAILS as i64);
    assert_eq!(entries, MAILS as i64);
    assert_eq!(inbound, MAILS as i64);
    assert_eq!(processed.len(), MAILS, "each mail moved to Processed once");
    assert_eq!(distinct.len(), MAILS);
    assert_eq!(
        common::read_dir_texts(&scratch.path("var/outbox")).len(),
        2 * MAILS,
        "two notifications per mail, written once each"
    );
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The tracking page's port, from the daemon's log line "Tracking page listening".
fn web_port(scratch: &Scratch) -> u16 {
    let mut port = None;
    wait_until("the tracking page listens", 20, || {
        port = log_of(scratch)
            .lines()
            .filter(|l| l.contains("Tracking page listening"))
            .filter_map(|l| l.split("address=127.0.0.1:").nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .next_back();
        port.is_some()
    });
    port.expect("port")
}

/// `GET /healthz`: the status code and the body.
fn healthz(port: u16) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

/// Files under `dir` whose name ends in `.tmp` (partial blobs).
fn partial_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            found.extend(partial_files(&path));
        } else if path.to_string_lossy().ends_with(".tmp") {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn a_full_or_read_only_disk_stops_intake_clearly_and_it_resumes_by_itself() {
    let _turn = turn();
    let pid = std::process::id();
    let mount = |name: &str| {
        Tmpfs::mount(Path::new(&format!("/tmp/pdc-{name}-{pid}")), "64m").map_err(|e| {
            let required = std::env::var("POSTDESK_REQUIRE_MAILSTACK").is_ok_and(|v| v == "1");
            assert!(!required, "cannot mount a tmpfs (needs root): {e}");
            eprintln!("SKIPPED disk faults: cannot mount a tmpfs (needs root): {e}");
        })
    };
    let (Ok(db_disk), Ok(data_disk)) = (mount("db"), mount("data")) else {
        return;
    };
    let Some(stack) = start_private("disk") else {
        return;
    };
    let mut rng = Rng::new(seed("disk faults"));
    let db = db_disk.path.join("postdesk.db");
    let scratch = Scratch::with_config(&config(&stack, Outbound::Files, ""));
    let settings = std::fs::read_to_string(scratch.path("config.toml")).expect("config");
    let settings = settings
        .replace(
            "data_dir = \"var\"",
            &format!(
                "data_dir = \"{}\"\ndatabase = \"{}\"",
                data_disk.path.display(),
                db.display()
            ),
        )
        .replace(
            "[smtp]\nkind = \"file\"",
            &format!(
                "[smtp]\nkind = \"file\"\ndir = \"{}\"",
                scratch.path("outbox").display()
            ),
        );
    std::fs::write(scratch.path("config.toml"), settings).expect("config");
    let daemon = Daemon::start(&scratch);
    let port = web_port(&scratch);
    let pid_then = daemon.child.id();
    let mut total = 20;
    append_mails(&stack, total, &mut rng);
    wait_until("the first mails are tickets", 30, || {
        intake_counts(&db).0 == total as i64
    });
    assert_eq!(healthz(port).0, 200);

    // Each fault: mail arrives, intake stops with a clear error naming the file and the
    // cause, the mail stays in INBOX, /healthz is 503; then the fault is fixed and intake
    // resumes by itself, in the same process.
    let mut fault = |name: &str, make: &dyn Fn(), fix: &dyn Fn(), path: &Path, cause: &str| {
        let log_before = log_of(&scratch).len();
        make();
        append_mails(&stack, 30, &mut rng);
        total += 30;
        let mut health = (0, String::new());
        wait_until(
            &format!("{name}: /healthz says intake cannot store"),
            30,
            || {
                health = healthz(port);
                health.0 == 503
            },
        );
        let log = log_of(&scratch)[log_before..].to_string();
        let error = log
            .lines()
            .find(|l| l.contains("Cannot store mail"))
            .unwrap_or_else(|| panic!("{name}: no error logged:\n{log}"))
            .to_string();
        println!(
            "{name}: logged: {error}\n{name}: /healthz 503: {}",
            health.1.trim()
        );
        for wanted in [&path.display().to_string(), cause] {
            assert!(
                error.contains(wanted),
                "{name}: the error names {wanted:?}: {error}"
            );
            assert!(
                health.1.contains(wanted),
                "{name}: /healthz names {wanted:?}: {}",
                health.1
            );
        }
        std::thread::sleep(Duration::from_secs(2));
        let (tickets, ..) = intake_counts(&db);
        let waiting = mailbox_count(&stack, SUPPORT, "INBOX");
        assert!(waiting > 0, "{name}: the mail stays in INBOX");
        assert_eq!(tickets as usize + waiting, total, "{name}: nothing lost");
        assert!(
            partial_files(&data_disk.path).is_empty(),
            "{name}: no partial file left: {:?}",
            partial_files(&data_disk.path)
        );
        fix();
        wait_until(&format!("{name}: intake resumed by itself"), 30, || {
            intake_counts(&db).0 == total as i64
        });
        wait_until(&format!("{name}: /healthz is 200 again"), 10, || {
            healthz(port).0 == 200
        });
        assert_eq!(mailbox_count(&stack, SUPPORT, "INBOX"), 0);
    };
    let filler = "filler";
    fault(
        "database disk full",
        &|| {
            db_disk.fill(filler);
        },
        &|| std::fs::remove_file(db_disk.path.join(filler)).expect("free"),
        &db,
        "No space left on device",
    );
    fault(
        "data directory full",
        &|| {
            data_disk.fill(filler);
        },
        &|| std::fs::remove_file(data_disk.path.join(filler)).expect("free"),
        &data_disk.path,
        "No space left on device",
    );
    fault(
        "data directory read-only",
        &|| data_disk.set_writable(false),
        &|| data_disk.set_writable(true),
        &data_disk.path,
        "Read-only file system",
    );
    assert_eq!(daemon.child.id(), pid_then, "no restart");
    daemon.stop();
    let (tickets, subjects, entries, inbound) = intake_counts(&db);
    assert_eq!(
        (tickets, subjects, entries, inbound),
        (total as i64, total as i64, total as i64, total as i64)
    );
    drop(stack);
    drop((db_disk, data_disk));
}

#[test]
fn an_autoresponder_loop_with_kills_dies_within_the_hourly_limit() {
    let _turn = turn();
    let Some(stack) = start_private("loop") else {
        return;
    };
    const LIMIT: usize = 5;
    const ROBOT_SECONDS: u32 = 22;
    let mut rng = Rng::new(seed("autoresponder loop"));
    let scratch = Scratch::with_config(&config(
        &stack,
        Outbound::Smtp,
        &format!("[tickets]\nauto_reply_limit_per_hour = {LIMIT}\n"),
    ));
    let db = scratch.path("var/postdesk.db");
    let mut daemon = Daemon::start(&scratch);
    std::thread::sleep(Duration::from_millis(800));
    let robot = format!("customer2+robot{}@example.com", nonce());
    let child = run_robot(
        &stack,
        &robot,
        ROBOT_SECONDS,
        "human",
        ("Order status?", "Where is my order?"),
    );
    // Kill -9 the daemon a few times while the robot and postdesk answer each other.
    let mut in_flight: BTreeSet<String> = BTreeSet::new();
    let mut kill_times: Vec<f64> = Vec::new();
    let until = Instant::now() + Duration::from_secs(u64::from(ROBOT_SECONDS) - 11);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200 + rng.below(700)));
        let pid = daemon.child.id();
        daemon.kill_hard();
        kill_times.push(unix_now());
        in_flight.extend(claimed_by(&db, pid));
        daemon = Daemon::start(&scratch);
    }
    let run = robot_result(child);
    wait_until("every robot mail is a ticket", 30, || {
        intake_counts(&db).0 as usize == run.sent + 1
    });
    daemon.stop();
    let distinct: BTreeSet<&String> = run.message_ids.iter().collect();
    let last = run.received.iter().copied().fold(0.0, f64::max);
    let kills = kill_times.len();
    let kills_during = kill_times.iter().filter(|t| **t < last).count();
    println!(
        "autoresponder loop: limit {LIMIT}/h, {kills} kills ({kills_during} during the \
         exchange); postdesk answered {} times \
         ({} distinct mails, {} in flight at a kill), the robot wrote {} + 1 mails; quiet for \
         the last {:.1} s",
        run.received.len(),
        distinct.len(),
        in_flight.len(),
        run.sent,
        run.ended - last
    );
    assert_eq!(
        distinct.len(),
        LIMIT,
        "answered exactly up to auto_reply_limit_per_hour"
    );
    assert!(
        run.received.len() - distinct.len() <= in_flight.len(),
        "only mails in flight at a kill arrive twice"
    );
    assert!(run.ended - last > 8.0, "the exchange stopped");
    assert!(kills_during >= 3, "kills struck while the loop ran");
    assert_eq!(outbox_to(&scratch, &robot, "sent") as usize, LIMIT);
    assert_eq!(
        outbox_to(&scratch, &robot, "suppressed") as usize,
        run.sent + 1 - LIMIT,
        "each answer over the limit is recorded as suppressed"
    );
}
