//! The tracking page under load: the daemon (`postdesk run`, release build, Maildir intake,
//! replies to `.eml` files, no mail server) over a generated database of `PD_TICKETS`
//! (100,000) tickets, and `wrk -t2 -c32 -d20s --latency` against `/t/{ID}/{token}` of tickets
//! with 20 messages.
//!
//! Two figures: repeat views (every request for the same ticket) and first views (each
//! request for another of `PD_FEATURED` (2,000) tickets in turn, more than the page cache
//! holds, so no request finds its page cached). Both report requests/s and the p99 latency
//! that wrk measures. Machine: wrk and the daemon share the same 2 cores.
//!
//! Run: `cargo bench --locked --bench page_wrk` (installs the Debian package `wrk` with
//! apt-get when it is missing; or `apt-get install wrk` first). `PD_DURATION` (20) sets the
//! seconds per wrk run. Under `cargo test` it starts the daemon on a small database and
//! checks one page (no wrk).

#[allow(dead_code)]
mod mailgen;
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::Command;

use support::{env_num, Daemon, ANCHOR_MS, AUTO_CLOSE_AFTER};

/// The `auto_close_after` under which, right now, exactly the generated due tickets are due
/// (the data is anchored at `ANCHOR_MS`, the daemon uses the clock).
pub fn shifted_auto_close_after() -> String {
    let shift = (postdesk::app::now_ms() - ANCHOR_MS).max(0) / 1000;
    format!("{}s", AUTO_CLOSE_AFTER.as_secs() as i64 + shift)
}

fn wrk_available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
}

fn ensure_wrk() -> anyhow::Result<()> {
    if wrk_available() {
        return Ok(());
    }
    println!("page_wrk: wrk is missing; installing the Debian package with apt-get");
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-q", "wrk"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    anyhow::ensure!(
        wrk_available(),
        "wrk is not installed and apt-get could not install it: run `apt-get install wrk` as root"
    );
    Ok(())
}

/// What wrk reported.
struct WrkResult {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    errors: String,
}

fn wrk_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, factor) = if let Some(v) = text.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn run_wrk(url: &str, script: Option<&Path>, seconds: usize) -> anyhow::Result<WrkResult> {
    let mut command = Command::new("wrk");
    command.args(["-t2", "-c32", &format!("-d{seconds}s"), "--latency"]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(url).output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line_value = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    Ok(WrkResult {
        requests_per_s: line_value("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        p50_ms: line_value("50%")
            .and_then(|v| wrk_ms(&v))
            .unwrap_or(f64::NAN),
        p99_ms: line_value("99%")
            .and_then(|v| wrk_ms(&v))
            .unwrap_or(f64::NAN),
        requests,
        errors,
    })
}

/// CPU time (user + system) that process `pid` used so far, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 a second).
    (fields.get(11).copied().unwrap_or(0.0) + fields.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let bench = std::env::args().any(|a| a == "--bench");
    let options = support::page_database(bench);
    let seconds = env_num("PD_DURATION", 20);
    let bin = support::postdesk_bin();
    if bench {
        ensure_wrk()?;
    }
    let dir = tempfile::tempdir()?;
    let generated = support::generate(&dir.path().join("var"), &options)?;
    let port = support::free_port();
    std::fs::write(
        dir.path().join("config.toml"),
        support::daemon_config(
            port,
            &format!("auto_close_after = \"{}\"", shifted_auto_close_after()),
        ),
    )?;
    let secret = postdesk::secret::load_or_create(&dir.path().join("var/secret"))?;
    let paths: Vec<String> = generated
        .featured
        .iter()
        .map(|f| {
            let token = postdesk::signing::tracking_token(&secret, &f.tracking_id, &f.customer);
            format!("/t/{}/{token}", f.tracking_id)
        })
        .collect();
    let daemon = Daemon::start(&bin, dir.path(), port, &[])?;
    let (status, body) = support::http_get(port, &paths[0])?;
    anyhow::ensure!(status == 200, "the page answered {status}");
    let shown = body.matches("<article").count();
    anyhow::ensure!(
        shown == options.featured_messages,
        "the page shows {shown} messages, not {}",
        options.featured_messages
    );
    let (status, _) = support::http_get(port, &format!("{}x", paths[0]))?;
    anyhow::ensure!(status == 404, "a wrong token answered {status}");
    println!(
        "page_wrk: {} tickets ({:.0} MB database), page of {} messages is {:.1} KB; load average before: {}",
        options.tickets,
        generated.bytes as f64 / 1e6,
        options.featured_messages,
        body.len() as f64 / 1024.0,
        load_average()
    );
    if !bench {
        println!("page_wrk: smoke run only (cargo bench --bench page_wrk runs wrk)");
        return Ok(());
    }

    // Repeat views: one ticket, again and again.
    let url = format!("http://127.0.0.1:{port}{}", paths[0]);
    let pid = daemon.pid();
    let cpu_before = cpu_seconds(pid);
    let repeat = run_wrk(&url, None, seconds)?;
    let repeat_cpu = cpu_seconds(pid) - cpu_before;
    // First views: each of wrk's two threads goes round its own half of the tickets, so a
    // page comes round again only after some 2,000 other requests, more than the cache
    // keeps (512 pages).
    let script = dir.path().join("rotate.lua");
    let list = paths
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(",\n");
    std::fs::write(
        &script,
        format!(
            "local paths = {{\n{list}\n}}\nlocal n = 0\n\
             function setup(thread) thread:set(\"part\", n) n = n + 1 end\n\
             local i = 0\n\
             function request()\n  i = i + 1\n  \
             local half = math.floor(#paths / 2)\n  \
             return wrk.format(\"GET\", paths[(part or 0) * half + (i % half) + 1])\nend\n"
        ),
    )?;
    let cpu_before = cpu_seconds(pid);
    let first = run_wrk(&format!("http://127.0.0.1:{port}/"), Some(&script), seconds)?;
    let first_cpu = cpu_seconds(pid) - cpu_before;
    let (_, metrics) = support::http_get(port, "/metrics")?;
    let cache_lines: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("postdesk_page_cache"))
        .collect();
    drop(daemon);
    for (name, r, cpu) in [
        ("repeat views", &repeat, repeat_cpu),
        ("first views", &first, first_cpu),
    ] {
        println!(
            "{name}: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms ({} requests in {seconds} s; \
             daemon CPU {:.0} µs a request, {:.2} of 2 cores{}{})",
            r.requests_per_s,
            r.p50_ms,
            r.p99_ms,
            r.requests,
            cpu * 1e6 / r.requests.max(1) as f64,
            cpu / seconds as f64,
            if r.errors.is_empty() { "" } else { "; " },
            r.errors
        );
    }
    if !cache_lines.is_empty() {
        println!("page cache: {}", cache_lines.join(", "));
    }
    println!("load average after: {}", load_average());
    Ok(())
}
