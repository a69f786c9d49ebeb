//! How fast the tracking page is: the server time of the ticket view for a ticket with 50
//! messages (lookup, thread query, view, template), and a rough request rate through the
//! whole router (routing, headers, the blocking pool) without a socket.
//!
//! `cargo bench --bench web_page` prints the figures; under `cargo test` it runs one short
//! pass so that it keeps compiling and working.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use postdesk::config::Language;
use postdesk::model::{EmailAddress, TrackingId};
use postdesk::web::{router, ticket_page, WebState};
use tower::ServiceExt;

const CUSTOMER: &str = "customer1@example.com";

fn message(from: &str, subject: &str, n: usize, attachment: bool) -> Vec<u8> {
    let text = format!(
        "Message {n}. The printer on the third floor still smokes when it prints duplex; \
         we followed https://example.com/manual/page-{n} and restarted it twice.\r\n\
         Second line with <angle brackets> & ampersands, in Ukrainian: друкарка знову димить.\r\n"
    );
    let mut raw = format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <bench-{n}@client.example>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n"
    );
    if attachment {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\
             --b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"photo-{n}.png\"\r\n\r\nPNG{n}\r\n--b--\r\n"
        ));
    } else {
        raw.push_str(&format!(
            "Content-Type: text/plain; charset=utf-8\r\n\r\n{text}"
        ));
    }
    raw.into_bytes()
}

fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("config.toml");
    std::fs::write(&path, include_str!("../config.toml"))?;
    let config = postdesk::config::load(&path, Vec::new())?;
    let secret = postdesk::secret::load_or_create(&config.general.secret_file)?;
    let mut intake = postdesk::app::intake(&config, &secret)?;
    let now = postdesk::app::now_ms() - 3_600_000;
    let first = intake.process(
        &message(CUSTOMER, "Printer on fire", 0, false),
        "bench",
        now,
    )?;
    let id: TrackingId = first.ticket.ok_or_else(|| anyhow::anyhow!("no ticket"))?;
    for n in 1..50 {
        let from = if n % 2 == 1 {
            "agent@example.com"
        } else {
            CUSTOMER
        };
        let subject = format!("Re: [#{id}] Printer on fire");
        let outcome = intake.process(
            &message(from, &subject, n, n % 10 == 0),
            "bench",
            now + n as i64 * 1000,
        )?;
        anyhow::ensure!(outcome.outcome == "appended", "{outcome:?}");
    }
    let state = WebState::new(&config, &secret)?;
    let customer = EmailAddress::parse(CUSTOMER).ok_or_else(|| anyhow::anyhow!("address"))?;
    let token = postdesk::signing::tracking_token(&secret, &id, &customer);
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);

    let iterations = if full { 5_000 } else { 20 };
    for _ in 0..iterations.min(200) {
        ticket_page(&state, ip, id.as_str(), &token, Language::En);
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let response = ticket_page(&state, ip, id.as_str(), &token, Language::En);
        samples.push(started.elapsed());
        anyhow::ensure!(response.status() == StatusCode::OK);
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "ticket view, 50 messages: mean {:.0} µs, p50 {:.0} µs, p99 {:.0} µs ({iterations} runs)",
        mean.as_secs_f64() * 1e6,
        p(0.5).as_secs_f64() * 1e6,
        p(0.99).as_secs_f64() * 1e6
    );

    // Where the time goes: the queries, the view (escaping, linkifying), the template.
    let store = postdesk::store::Store::open_read_only(&config.general.database)?;
    let pages = postdesk::web::pages::Pages::new(None, "Example Support")?;
    let agents = std::collections::HashMap::from([(
        "agent@example.com".to_string(),
        "Agent Smith".to_string(),
    )]);
    let (mut db, mut view, mut render) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..iterations {
        let started = Instant::now();
        let ticket = store
            .ticket_by_tracking_id_and_email(&id, &customer)?
            .ok_or_else(|| anyhow::anyhow!("ticket"))?;
        let thread = store.thread(&id, false)?;
        let queried = Instant::now();
        let settings = postdesk::web::view::ViewSettings {
            agent_names: &agents,
            support_name: "Example Support",
            lang: Language::En,
            now: chrono::Utc::now(),
            ticket_path: &token,
        };
        let ticket_view = postdesk::web::view::ticket_view(&ticket, &thread, &settings);
        let viewed = Instant::now();
        std::hint::black_box(pages.ticket(Language::En, &ticket_view)?);
        db += queried - started;
        view += viewed - queried;
        render += viewed.elapsed();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / iterations as f64;
    println!(
        "  of which: queries {:.0} µs, view {:.0} µs, template {:.0} µs",
        per(db),
        per(view),
        per(render)
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let uri = format!("/t/{id}/{token}");
    let requests = if full { 5_000 } else { 20 };
    let elapsed = runtime.block_on(async {
        let app = router(state.clone());
        let started = Instant::now();
        for _ in 0..requests {
            let request = Request::get(&uri)
                .extension(ConnectInfo(SocketAddr::new(ip, 1)))
                .body(Body::empty())?;
            let response = app.clone().oneshot(request).await?;
            anyhow::ensure!(response.status() == StatusCode::OK);
            axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        }
        Ok::<_, anyhow::Error>(started.elapsed())
    })?;
    println!(
        "router, one request after another: {:.0} requests/s ({requests} requests in {:.2} s)",
        requests as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    Ok(())
}
