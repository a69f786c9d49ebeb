//! The idle daemon's memory with a big database: `postdesk run` (release build, Maildir
//! intake with an empty Maildir, replies to `.eml` files) over `PD_TICKETS` (100,000)
//! generated tickets, 1,000 of them due for auto-close.
//!
//! Reads VmRSS (resident now) and VmHWM (the peak so far) from `/proc/PID/status`:
//! after start-up (which includes the start-up sweep that closes the 1,000 due tickets and
//! the outbox sending their 1,000 `ticket_closed` mails), after `PD_PAGES` (2,000) page
//! views over 200 different tickets, and after one more (scheduled) sweep with nothing due.
//!
//! Run: `cargo bench --locked --bench memory_idle`. Under `cargo test` it does the same on
//! 2,000 tickets as a smoke test.

#[allow(dead_code)]
mod mailgen;
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use support::{count_files, env_num, Daemon, ANCHOR_MS, AUTO_CLOSE_AFTER};

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Threads, and resident memory split into heap/stacks (anonymous) and mapped files (the
/// binary, libraries), in KB, from `/proc/PID/status`.
fn breakdown(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    format!(
        "{} threads, anonymous {:.1} MB, files {:.1} MB",
        field("Threads:"),
        mb(field("RssAnon:")),
        mb(field("RssFile:"))
    )
}

fn main() -> anyhow::Result<()> {
    let bench = std::env::args().any(|a| a == "--bench");
    let options = support::page_database(bench);
    let pages = if bench {
        env_num("PD_PAGES", 2_000)
    } else {
        20
    };
    let bin = support::postdesk_bin();
    let dir = tempfile::tempdir()?;
    let generated = support::generate(&dir.path().join("var"), &options)?;
    let port = support::free_port();
    // Due as of now exactly the generated due tickets; a sweep every 10 s.
    let shift = (postdesk::app::now_ms() - ANCHOR_MS).max(0) / 1000;
    let after = AUTO_CLOSE_AFTER.as_secs() as i64 + shift;
    std::fs::write(
        dir.path().join("config.toml"),
        support::daemon_config(
            port,
            &format!("auto_close_after = \"{after}s\"\nclose_schedule = \"*/10 * * * * *\""),
        ),
    )?;
    let secret = postdesk::secret::load_or_create(&dir.path().join("var/secret"))?;
    // `PD_DAEMON_ENV="NAME=value …"` adds to the daemon's environment (e.g. malloc tuning).
    let env: Vec<(&str, String)> = std::env::var("PD_DAEMON_ENV")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (&*k.to_string().leak(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let daemon = Daemon::start(&bin, dir.path(), port, &env)?;
    let pid = daemon.pid();
    let outbox = dir.path().join("var/outbox");
    // Start-up: the first sweep closes the due tickets and the outbox sends their mails.
    let deadline = Instant::now() + Duration::from_secs(120);
    while count_files(&outbox) < options.due_for_auto_close {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {} ticket_closed mails written in 120 s",
            count_files(&outbox),
            options.due_for_auto_close
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let (startup_rss, startup_hwm) = mailgen::rss_kb(pid).unwrap_or((0, 0));
    let startup_detail = breakdown(pid);

    let featured: Vec<String> = generated
        .featured
        .iter()
        .take(200)
        .map(|f| {
            let token = postdesk::signing::tracking_token(&secret, &f.tracking_id, &f.customer);
            format!("/t/{}/{token}", f.tracking_id)
        })
        .collect();
    for n in 0..pages {
        let (status, _) = support::http_get(port, &featured[n % featured.len()])?;
        anyhow::ensure!(status == 200, "page answered {status}");
    }
    std::thread::sleep(Duration::from_secs(1));
    let (pages_rss, pages_hwm) = mailgen::rss_kb(pid).unwrap_or((0, 0));
    let pages_detail = breakdown(pid);

    // One more sweep (the schedule fires every 10 s; nothing is due any more).
    std::thread::sleep(Duration::from_secs(if bench { 12 } else { 11 }));
    let (steady_rss, steady_hwm) = mailgen::rss_kb(pid).unwrap_or((0, 0));
    let steady_detail = breakdown(pid);
    drop(daemon);
    println!(
        "memory_idle: {} tickets ({:.0} MB database), {} closed at start-up",
        options.tickets,
        generated.bytes as f64 / 1e6,
        options.due_for_auto_close
    );
    println!(
        "  after start-up (incl. the sweep and {} mails sent): RSS {:.1} MB, peak {:.1} MB ({startup_detail})",
        options.due_for_auto_close,
        mb(startup_rss),
        mb(startup_hwm)
    );
    println!(
        "  after {pages} page views over {} tickets: RSS {:.1} MB, peak {:.1} MB ({pages_detail})",
        featured.len(),
        mb(pages_rss),
        mb(pages_hwm)
    );
    println!(
        "  after one more sweep, idle: RSS {:.1} MB, peak {:.1} MB ({steady_detail})",
        mb(steady_rss),
        mb(steady_hwm)
    );
    Ok(())
}
