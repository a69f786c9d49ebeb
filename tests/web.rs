//! The tracking page through its router, without a socket (`oneshot`), on an on-disk
//! database filled by the real intake pipeline: found, not found (one answer for a bad ID, a
//! bad address and a bad token), lockout and expiry, languages, headers, downloads, and a
//! hostile mail shown as text.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Request, StatusCode};
use chrono::{TimeZone, Utc};
use common::hostile::{has_live_markup, hostile_html_reply, hostile_mail};
use common::mail;
use postdesk::config::Config;
use postdesk::intake::{Intake, Outcome};
use postdesk::model::{EmailAddress, TrackingId};
use postdesk::vitals::Vitals;
use postdesk::web::{router, WebState, CONTENT_SECURITY_POLICY};
use tower::ServiceExt;

const T0: i64 = 1_795_000_000_000;
const MINUTE: i64 = 60_000;

struct Site {
    _dir: tempfile::TempDir,
    config: Config,
    secret: Vec<u8>,
    intake: Intake,
    clock: Arc<AtomicI64>,
    state: WebState,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Site {
    fn new(env: &[(&str, &str)]) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, include_str!("../config.toml")).expect("config");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let config = postdesk::config::load(&path, env).expect("config loads");
        let secret = postdesk::secret::load_or_create(&config.general.secret_file).expect("secret");
        let intake = postdesk::app::intake(&config, &secret).expect("intake");
        let clock = Arc::new(AtomicI64::new(T0));
        let now = clock.clone();
        let state = WebState::new(&config, &secret)
            .expect("web state")
            .with_clock(Arc::new(move || {
                Utc.timestamp_millis_opt(now.load(Ordering::SeqCst))
                    .single()
                    .expect("time")
            }));
        Site {
            _dir: dir,
            config,
            secret,
            intake,
            clock,
            state,
        }
    }

    /// The site as the daemon serves it: watching the intake heartbeat in `vitals`.
    fn with_vitals(mut self, vitals: Arc<Vitals>) -> Site {
        self.state = self.state.with_vitals(vitals);
        self
    }

    fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    fn deliver(&mut self, raw: &[u8]) -> Outcome {
        let now = self.clock.load(Ordering::SeqCst);
        self.intake.process(raw, "test", now).expect("intake")
    }

    fn open(&mut self, from: &str, subject: &str, body: &str) -> TrackingId {
        let message_id = format!("{}@client.example", self.clock.load(Ordering::SeqCst));
        let outcome = self.deliver(&mail(from, subject, &message_id, "", body));
        assert_eq!(outcome.outcome, "ticket_opened");
        self.advance(MINUTE);
        outcome.ticket.expect("ticket")
    }

    fn reply(&mut self, from: &str, id: &TrackingId, body: &str) {
        let message_id = format!("{}@client.example", self.clock.load(Ordering::SeqCst));
        let subject = format!("Re: [#{id}] Printer on fire");
        let outcome = self.deliver(&mail(from, &subject, &message_id, "", body));
        assert_eq!(outcome.outcome, "appended", "{outcome:?}");
        self.advance(MINUTE);
    }

    fn link(&self, id: &TrackingId, customer: &str) -> String {
        let customer = EmailAddress::parse(customer).expect("address");
        postdesk::signing::tracking_link("", &self.secret, id, &customer)
    }

    async fn get(&self, uri: &str, peer: &str) -> Page {
        self.get_with(uri, peer, &[]).await
    }

    async fn get_with(&self, uri: &str, peer: &str, headers: &[(&str, &str)]) -> Page {
        let peer: IpAddr = peer.parse().expect("ip");
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .extension(ConnectInfo(SocketAddr::new(peer, 40000)))
            .body(Body::empty())
            .expect("request");
        let response = router(self.state.clone())
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

const CUSTOMER: &str = "customer1@example.com";
const CLIENT: &str = "203.0.113.7";

fn attachment_mail(id: &TrackingId) -> Vec<u8> {
    format!(
        "From: Olena Petrenko <{CUSTOMER}>\r\nTo: support@example.com\r\nSubject: Re: [#{id}] photo\r\n\
         Message-ID: <photo@client.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         Here is the photo.\r\n--b\r\nContent-Type: image/png\r\n\
         Content-Disposition: attachment; filename=\"smoke.png\"\r\n\r\nPNG-BYTES\r\n--b--\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_ticket_shows_what_hesk_shows_and_nothing_internal() {
    let mut site = Site::new(&[]);
    let id = site.open(
        &format!("Olena Petrenko <{CUSTOMER}>"),
        "Printer on fire",
        "It smokes. See https://example.com/manual",
    );
    site.deliver(&attachment_mail(&id));
    site.advance(MINUTE);
    // The agent's mail client calls the agent something else: the page uses the config's name.
    site.reply(
        "Private Nickname <agent@example.com>",
        &id,
        "Unplug it, please.",
    );
    site.reply("agent@example.com", &id, "#note\nSecret internal remark");
    site.advance(90 * MINUTE);

    let page = site.get(&site.link(&id, CUSTOMER), CLIENT).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let html = &page.body;
    for expected in [
        "Printer on fire",
        id.as_str(),
        "<dd>1</dd>",
        "Replied",
        "Agent Smith",
        "Olena Petrenko",
        "It smokes.",
        "Unplug it, please.",
        "<dt>Replies</dt><dd>2</dd>",
        "smoke.png",
        "9 B",
        "<a href=\"https://example.com/manual\" rel=\"nofollow noopener noreferrer\">",
        "1 hour ago",
        "2026-11-18",
    ] {
        assert!(html.contains(expected), "{expected:?} missing in\n{html}");
    }
    for absent in [
        "Secret internal remark",
        "agent@example.com",
        "Private Nickname",
        "Message-ID",
        "support@example.com",
    ] {
        assert!(!html.contains(absent), "{absent:?} leaked into\n{html}");
    }
    let messages: Vec<&str> = html
        .match_indices("class=\"message ")
        .map(|(i, _)| &html[i..i + 24])
        .collect();
    assert_eq!(messages.len(), 3, "customer, customer, agent: {messages:?}");
    assert!(
        html.find("It smokes.") < html.find("Unplug it"),
        "oldest first"
    );

    // The attachment downloads through the same token, never rendered inline.
    let href = html
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .map(|h| h.replace("&#x2F;", "/"))
        .find(|h| h.contains("/files/"))
        .expect("download link");
    let url = format!("/t/{id}/{href}");
    let file = site.get(&url, CLIENT).await;
    assert_eq!(file.status, StatusCode::OK, "{url}");
    assert_eq!(file.body, "PNG-BYTES");
    assert_eq!(
        file.headers[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    assert_eq!(
        file.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"smoke.png\"; filename*=UTF-8''smoke.png"
    );
    assert_eq!(file.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn a_wrong_id_a_wrong_address_and_a_wrong_token_get_one_answer() {
    let mut site = Site::new(&[]);
    let id = site.open(CUSTOMER, "Printer on fire", "It smokes.");
    let other = site.open("customer2@example.com", "Another", "Mine.");

    let good = site
        .get(
            &format!(
                "/ticket?track={}&e=Customer1%40Example.com",
                id.as_str().to_lowercase()
            ),
            CLIENT,
        )
        .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER);
    let location = good.headers[header::LOCATION].to_str().expect("location");
    assert_eq!(format!("/{location}"), site.link(&id, CUSTOMER));
    assert!(!location.contains('@'), "the address leaves the URL");
    assert_eq!(
        site.get(&format!("/{location}"), CLIENT).await.status,
        StatusCode::OK
    );

    let answers = [
        site.get(&format!("/ticket?track=AAA-AAA-AAAA&e={CUSTOMER}"), CLIENT)
            .await,
        site.get(
            &format!("/ticket?track={id}&e=customer2@example.com"),
            CLIENT,
        )
        .await,
        site.get(&format!("/ticket?track={id}&e=not-an-address"), CLIENT)
            .await,
        site.get("/ticket?track=garbage&e=x@y.z", CLIENT).await,
    ];
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.body, answers[0].body);
    }
    assert!(answers[0].body.contains("No request matches"));

    let token_answers = [
        site.get(
            &format!("/t/{id}/00000000000000000000000000000000"),
            "198.51.100.1",
        )
        .await,
        site.get(&site.link(&other, CUSTOMER), "198.51.100.1").await,
        site.get(
            &format!("/t/AAA-AAA-AAAA/{}", &site.link(&id, CUSTOMER)[18..]),
            "198.51.100.1",
        )
        .await,
        site.get(&format!("/t/{id}/x"), "198.51.100.1").await,
    ];
    for answer in &token_answers {
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(
            answer.body, answers[0].body,
            "the same page as a failed lookup"
        );
    }
    // Another customer's link cannot fetch this ticket's files either.
    let file = site
        .get(
            &format!("{}/files/{}", site.link(&other, CUSTOMER), "a".repeat(64)),
            "198.51.100.2",
        )
        .await;
    assert_eq!(file.status, StatusCode::NOT_FOUND);
    // An empty form is not a failure.
    assert_eq!(site.get("/ticket", CLIENT).await.status, StatusCode::OK);
}

#[tokio::test]
async fn five_failures_lock_the_client_out_for_an_hour_even_with_a_good_link() {
    let mut site = Site::new(&[]);
    let id = site.open(CUSTOMER, "Printer on fire", "It smokes.");
    let link = site.link(&id, CUSTOMER);
    for _ in 0..5 {
        let page = site.get(&format!("/t/{id}/bad"), CLIENT).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    }
    let locked = site.get(&link, CLIENT).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.headers[header::RETRY_AFTER], "3600");
    assert!(locked.body.contains("Too many failed attempts"));
    let lookup = site
        .get(&format!("/ticket?track={id}&e={CUSTOMER}"), CLIENT)
        .await;
    assert_eq!(lookup.status, StatusCode::TOO_MANY_REQUESTS);
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let forged = site
        .get_with(&link, CLIENT, &[("x-forwarded-for", "192.0.2.99")])
        .await;
    assert_eq!(forged.status, StatusCode::TOO_MANY_REQUESTS);
    // Other clients are not affected.
    assert_eq!(site.get(&link, "203.0.113.8").await.status, StatusCode::OK);

    site.advance(59 * MINUTE);
    assert_eq!(
        site.get(&link, CLIENT).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    site.advance(MINUTE + 1000);
    assert_eq!(site.get(&link, CLIENT).await.status, StatusCode::OK);

    let metrics = site.get("/metrics", CLIENT).await.body;
    assert!(
        metrics.contains("postdesk_web_lockouts_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_told_apart_by_forwarded_for() {
    let mut site = Site::new(&[
        ("POSTDESK__WEB__TRUSTED_PROXIES", "[\"127.0.0.1\"]"),
        ("POSTDESK__WEB__LOOKUP_FAILURES_BEFORE_LOCK", "2"),
        ("POSTDESK__WEB__LOOKUP_LOCK", "10m"),
    ]);
    assert_eq!(site.config.web.lookup_failures_before_lock, 2);
    let id = site.open(CUSTOMER, "Printer on fire", "It smokes.");
    let link = site.link(&id, CUSTOMER);
    let attacker = [("x-forwarded-for", "192.0.2.66")];
    for _ in 0..2 {
        site.get_with(&format!("/t/{id}/bad"), "127.0.0.1", &attacker)
            .await;
    }
    let blocked = site.get_with(&link, "127.0.0.1", &attacker).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(blocked.headers[header::RETRY_AFTER], "600");
    let customer = site
        .get_with(&link, "127.0.0.1", &[("x-forwarded-for", "192.0.2.7")])
        .await;
    assert_eq!(customer.status, StatusCode::OK);
}

#[tokio::test]
async fn the_language_follows_the_config_and_the_lang_parameter() {
    let mut site = Site::new(&[]);
    let id = site.open(CUSTOMER, "Printer on fire", "It smokes.");
    let link = site.link(&id, CUSTOMER);
    let en = site.get(&link, CLIENT).await.body;
    assert!(
        en.contains("<html lang=\"en\">") && en.contains("<dt>Status</dt>") && en.contains(">New<")
    );
    let uk = site.get(&format!("{link}?lang=uk"), CLIENT).await.body;
    for expected in [
        "<html lang=\"uk\">",
        "<dt>Стан</dt>",
        ">Новий<",
        "Повідомлення",
        "1 хвилину тому",
    ] {
        assert!(uk.contains(expected), "{expected} missing in\n{uk}");
    }
    let form = site.get("/?lang=UK", CLIENT).await.body;
    assert!(form.contains("Переглянути наявний запит"));
    let redirect = site
        .get(&format!("/ticket?track={id}&e={CUSTOMER}&lang=uk"), CLIENT)
        .await;
    assert!(redirect.headers[header::LOCATION]
        .to_str()
        .expect("loc")
        .ends_with("?lang=uk"));
    let missing = site
        .get("/ticket?track=AAA-AAA-AAAA&e=a@b.c&lang=uk", CLIENT)
        .await
        .body;
    assert!(missing.contains("Запиту з таким ідентифікатором"));

    let site = Site::new(&[("POSTDESK__GENERAL__LANGUAGE", "uk")]);
    assert!(site
        .get("/", CLIENT)
        .await
        .body
        .contains("<html lang=\"uk\">"));
    assert!(site
        .get("/?lang=en", CLIENT)
        .await
        .body
        .contains("View an existing request"));
    assert!(site
        .get("/?lang=xx", CLIENT)
        .await
        .body
        .contains("<html lang=\"uk\">"));
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let mut site = Site::new(&[]);
    let id = site.open(CUSTOMER, "Printer on fire", "It smokes.");
    let uris = [
        site.link(&id, CUSTOMER),
        "/".to_string(),
        format!("/ticket?track={id}&e={CUSTOMER}"),
        "/ticket?track=AAA-AAA-AAAA&e=a@b.c".to_string(),
        "/nowhere".to_string(),
        "/healthz".to_string(),
        "/metrics".to_string(),
    ];
    for uri in &uris {
        let page = site.get(uri, CLIENT).await;
        let h = &page.headers;
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY,
            "{uri}"
        );
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer", "{uri}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{uri}");
        assert_eq!(h["x-robots-tag"], "noindex, nofollow", "{uri}");
        assert_eq!(h[header::CACHE_CONTROL], "no-store", "{uri}");
    }
    assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none'"));
    let page = site.get(&uris[0], CLIENT).await;
    assert!(page
        .body
        .contains("<meta name=\"robots\" content=\"noindex, nofollow\">"));
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "no external assets"
    );

    // GET only.
    let post = router(site.state.clone())
        .oneshot(
            Request::post("/ticket")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn health_and_metrics_read_the_database() {
    let mut site = Site::new(&[]);
    site.open(CUSTOMER, "Printer on fire", "It smokes.");
    let health = site.get("/healthz", CLIENT).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok\n")
    );
    let metrics = site.get("/metrics", CLIENT).await;
    assert!(metrics.headers[header::CONTENT_TYPE]
        .to_str()
        .expect("type")
        .starts_with("text/plain; version=0.0.4"));
    for line in [
        "postdesk_tickets{status=\"new\"} 1",
        "postdesk_inbound_mails_total{outcome=\"ticket_opened\"} 1",
        "postdesk_outbox_pending 2",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line} missing in\n{}",
            metrics.body
        );
    }
}

/// Checks the Prometheus text format line by line: `# HELP name text`, `# TYPE name kind`
/// before the samples, every sample `name{label="value",…} number` of a declared metric.
fn assert_prometheus_text(text: &str) {
    let is_name = |name: &str| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed = std::collections::HashMap::new();
    let mut helped = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has a text");
            assert!(is_name(name) && !help.is_empty(), "{line}");
            assert!(helped.insert(name.to_string()), "second HELP: {line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(is_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                typed.insert(name.to_string(), kind.to_string()).is_none(),
                "second TYPE: {line}"
            );
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            assert!(value.parse::<f64>().is_ok(), "value: {line}");
            let name = match series.split_once('{') {
                None => series,
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').expect("labels close");
                    for pair in labels.split(',') {
                        let (key, quoted) = pair.split_once('=').expect("label=value");
                        assert!(is_name(key), "label: {line}");
                        assert!(
                            quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                            "label value: {line}"
                        );
                    }
                    name
                }
            };
            let kind = typed
                .get(name)
                .unwrap_or_else(|| panic!("no TYPE for {line}"));
            assert!(helped.contains(name), "no HELP for {line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter name: {line}");
            }
        }
    }
}

#[tokio::test]
async fn healthz_needs_a_recent_intake_heartbeat_and_metrics_parse() {
    let vitals = Arc::new(Vitals::with_threshold(
        "imap://127.0.0.1/INBOX".into(),
        true,
        std::time::Duration::from_secs(90),
        T0,
    ));
    let mut site = Site::new(&[]).with_vitals(vitals.clone());
    site.open(CUSTOMER, "Printer on fire", "It smokes.");
    vitals.synced(T0 + MINUTE);
    vitals.set_connected(true);
    vitals.auto_close_ran(2);

    let fresh = site.get("/healthz", CLIENT).await;
    assert_eq!(
        (fresh.status, fresh.body.as_str()),
        (StatusCode::OK, "ok\n")
    );
    let metrics = site.get("/metrics", CLIENT).await;
    assert_prometheus_text(&metrics.body);
    for line in [
        "postdesk_imap_connected 1",
        "postdesk_intake_last_sync_timestamp_seconds 1795000060",
        "postdesk_intake_heartbeat_timestamp_seconds 1795000060",
        "postdesk_auto_close_runs_total 1",
        "postdesk_auto_closed_tickets_total 2",
        "postdesk_outbox_pending 2",
        "postdesk_outbox_oldest_pending_age_seconds 60",
        "postdesk_mails_suppressed_total 0",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line} missing in\n{}",
            metrics.body
        );
    }

    // The intake stops beating: 91 s later the daemon is unhealthy, and says why.
    site.advance(91_000);
    let stale = site.get("/healthz", CLIENT).await;
    assert_eq!(stale.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(stale.body, "intake: no heartbeat for 91 s (limit 90 s)\n");
    vitals.beat(T0 + MINUTE + 91_000);
    assert_eq!(site.get("/healthz", CLIENT).await.status, StatusCode::OK);
}

#[tokio::test]
async fn hostile_mail_is_shown_as_text() {
    let mut site = Site::new(&[]);
    let outcome = site.deliver(&hostile_mail(CUSTOMER));
    assert_eq!(outcome.outcome, "ticket_opened");
    let id = outcome.ticket.expect("ticket");
    site.advance(MINUTE);
    let reply = site.deliver(&hostile_html_reply(CUSTOMER, id.as_str()));
    assert_eq!(reply.outcome, "appended");

    let page = site.get(&site.link(&id, CUSTOMER), CLIENT).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = &page.body;
    assert_eq!(
        has_live_markup(html),
        Vec::<&str>::new(),
        "live markup in\n{html}"
    );
    for expected in [
        "&lt;script&gt;document.title=&#x27;pwned-subject&#x27;&lt;&#x2F;script&gt;",
        "&lt;script&gt;document.title=&#39;pwned-body&#39;&lt;/script&gt;",
        "javascript:document.title=&#39;pwned-js&#39;",
        "<a href=\"https://example.com/help?a=1&amp;b=2\" rel=\"nofollow noopener noreferrer\">",
        "<a href=\"http://example.com/\" rel=\"nofollow noopener noreferrer\">http://example.com/</a>&quot;&gt;&lt;script&gt;",
        "[U+202E]fdp.exe",
        "zero[U+200B]width",
        "invoice[U+202E]lmth.txt",
        "&quot;&gt;&lt;img src=x onerror=alert(4)&gt;.txt",
        "Second",
    ] {
        assert!(html.contains(expected), "{expected:?} missing in\n{html}");
    }
    assert_eq!(
        html.matches("<a href=").count(),
        1 + 2 + 2,
        "the language switch, two links in the text, two downloads"
    );
    assert!(html.contains("<title>Request "), "our own title");

    // The HTML attachment is a download, never a page.
    let href = html
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .filter(|h| h.contains("files"))
        .last()
        .expect("download")
        .replace("&#x2F;", "/");
    let file = site.get(&format!("/t/{id}/{href}"), CLIENT).await;
    assert_eq!(
        file.headers[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    let disposition = file.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .expect("ascii");
    assert!(
        disposition.starts_with("attachment; filename=\"invoice[U+202E]lmth.txt\""),
        "{disposition}"
    );
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
}

#[tokio::test]
async fn a_cached_page_shows_every_change_at_once() {
    let mut site = Site::new(&[]);
    let id = site.open(CUSTOMER, "Printer on fire", "It smokes.");
    let link = site.link(&id, CUSTOMER);
    let first = site.get(&link, CLIENT).await;
    let again = site.get(&link, CLIENT).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, first.body, "nothing changed");
    let metrics = site.get("/metrics", CLIENT).await.body;
    assert_eq!(metric(&metrics, "postdesk_page_cache_hits_total"), 1);
    assert_eq!(metric(&metrics, "postdesk_page_cache_misses_total"), 1);
    assert!(metric(&metrics, "postdesk_page_cache_bytes") > 0);

    // The token is still checked for a cached page, and a wrong one counts as a failure.
    let forged = site
        .get(&format!("/t/{id}/00000000000000000000000000000000"), CLIENT)
        .await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    assert!(!forged.body.contains("It smokes."));

    // A new message shows at once.
    site.reply(CUSTOMER, &id, "Now it is on fire.");
    let page = site.get(&link, CLIENT).await.body;
    assert!(page.contains("Now it is on fire."), "{page}");
    // An agent's reply changes the status and the thread at once.
    site.reply("agent@example.com", &id, "Unplug it, please.");
    let page = site.get(&link, CLIENT).await.body;
    assert!(
        page.contains("Unplug it, please.") && page.contains("Replied"),
        "{page}"
    );
    // An operator's close, which adds no message, shows at once.
    let mut store = postdesk::store::Store::open(&site.config.general.database).expect("store");
    let now = site.clock.load(Ordering::SeqCst);
    let closed = store
        .close_ticket(
            &id,
            postdesk::store::Closer::Operator,
            now,
            "close-1@example.com",
        )
        .expect("close");
    assert!(matches!(
        closed,
        postdesk::store::StatusChange::Changed { .. }
    ));
    let page = site.get(&link, CLIENT).await.body;
    assert!(page.contains("Resolved"), "{page}");

    // Relative times move on even when nothing else changes: the newest entry is a minute
    // old; just before the second minute the page is served from the cache unchanged, at
    // the second minute it reads "2 minutes ago".
    let cached = site.get(&link, CLIENT).await.body;
    let hits = metric(
        &site.get("/metrics", CLIENT).await.body,
        "postdesk_page_cache_hits_total",
    );
    assert!(cached.contains("1 minute ago"), "{cached}");
    site.advance(MINUTE - 1);
    assert_eq!(site.get(&link, CLIENT).await.body, cached);
    let later = metric(
        &site.get("/metrics", CLIENT).await.body,
        "postdesk_page_cache_hits_total",
    );
    assert_eq!(later, hits + 1, "served from the cache");
    site.advance(1);
    let moved = site.get(&link, CLIENT).await.body;
    assert!(moved.contains("2 minutes ago"), "{moved}");
    // Another language is another page.
    let uk = site.get(&format!("{link}?lang=uk"), CLIENT).await.body;
    assert!(uk.contains("lang=\"uk\""), "{uk}");
}
