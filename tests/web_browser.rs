//! A real browser on a real ticket page: the built `postdesk run` serves the page on a free
//! loopback port, a hostile mail was delivered with `postdesk deliver`, and headless
//! Chromium (Debian's `chromium`) opens the customer's personal link. No script from the
//! mail may run — each would set `document.title` to `pwned…` — and the page is saved as a
//! phone-sized screenshot in English and Ukrainian under `target/screenshots/`.
//!
//! Without Chromium the test prints SKIPPED, unless `POSTDESK_REQUIRE_BROWSER=1` or
//! `CI=true`, where it fails (`tests/run-all.sh` installs it when it can).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::hostile::{has_live_markup, hostile_html_reply, hostile_mail};
use common::{free_port, mail, Scratch};
use postdesk::model::{EmailAddress, TrackingId};

const CUSTOMER: &str = "customer1@example.com";

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|dir| Path::new(dir).join(name))
            .find(|path| path.is_file())
    })
}

fn browser_required() -> bool {
    std::env::var("POSTDESK_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `target/screenshots/`, beside the test binary's `target/<profile>/deps/`.
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// A bare HTTP/1.0 GET: status line and body.
fn http_get(port: u16, path: &str) -> Option<(String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// Runs Chromium headless with `args` and the URL, killed after a minute.
fn run_chromium(browser: &Path, profile: &Path, args: &[&str], url: &str) -> Output {
    let child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let id = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(id.to_string())
            .status();
    });
    let output = child.wait_with_output().expect("chromium output");
    drop(watchdog);
    output
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
    }
}

#[test]
fn chromium_shows_a_hostile_ticket_as_text_in_both_languages() {
    let Some(browser) = chromium() else {
        assert!(
            !browser_required(),
            "chromium is missing and POSTDESK_REQUIRE_BROWSER=1 / CI=true: apt-get install chromium"
        );
        println!("SKIPPED: chromium is not installed (apt-get install chromium)");
        return;
    };
    let scratch = Scratch::new();
    let outcome = scratch.deliver_ok(&hostile_mail(CUSTOMER));
    let id = outcome["ticket"].as_str().expect("ticket").to_string();
    let agent_reply = mail(
        "Agent Smith <agent@example.com>",
        &format!("Re: [#{id}] your request"),
        "agent-1@example.com",
        "",
        "Thanks, we are looking into it. Details: https://status.example.com/incidents/42",
    );
    assert_eq!(scratch.deliver_ok(&agent_reply)["outcome"], "appended");
    assert_eq!(
        scratch.deliver_ok(&hostile_html_reply(CUSTOMER, &id))["outcome"],
        "appended"
    );

    let port = free_port();
    let log = std::fs::File::create(scratch.path("daemon.log")).expect("log");
    let _daemon = Daemon(
        scratch
            .command(&["run"])
            .env("POSTDESK__WEB__BIND", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn run"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some((status, body)) = http_get(port, "/healthz") {
            assert!(status.contains("200") && body == "ok\n", "{status} {body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not serve /healthz: {}",
            std::fs::read_to_string(scratch.path("daemon.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let secret = std::fs::read(scratch.path("var/secret")).expect("secret");
    let tracking = TrackingId::parse(&id).expect("id");
    let customer = EmailAddress::parse(CUSTOMER).expect("address");
    let base = format!("http://127.0.0.1:{port}");
    let link = postdesk::signing::tracking_link(&base, &secret, &tracking, &customer);
    let profile = tempfile::tempdir().expect("profile");

    let dom = run_chromium(&browser, profile.path(), &["--dump-dom"], &link);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom_text.contains(&format!("<title>Request {id} · Example Support</title>")),
        "our title, untouched by any script:\n{dom_text}\n{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    assert_eq!(has_live_markup(&dom_text), Vec::<&str>::new(), "{dom_text}");
    assert!(dom_text.contains("&lt;script&gt;document.title='pwned-subject'&lt;/script&gt;"));
    assert!(dom_text.contains("Agent Smith") && !dom_text.contains("agent@example.com"));

    let dir = screenshot_dir();
    for (lang, title) in [("en", "Request"), ("uk", "Запит")] {
        let url = format!("{link}?lang={lang}");
        let dom = run_chromium(&browser, profile.path(), &["--dump-dom"], &url);
        let dom_text = String::from_utf8_lossy(&dom.stdout);
        assert!(
            dom_text.contains(&format!("<title>{title} {id}")),
            "{dom_text}"
        );
        let file = dir.join(format!("ticket-{lang}.png"));
        let _ = std::fs::remove_file(&file);
        let shot = run_chromium(
            &browser,
            profile.path(),
            &[
                &format!("--screenshot={}", file.display()),
                "--window-size=420,900",
            ],
            &url,
        );
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 1000,
            "no screenshot at {}: {}",
            file.display(),
            String::from_utf8_lossy(&shot.stderr)
        );
        println!("screenshot: {}", file.display());
    }
}
