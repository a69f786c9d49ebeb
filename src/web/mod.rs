//! The read-only tracking page: an axum router served by the daemon on `[web] bind`.
//!
//! Routes: `GET /` (the lookup form), `GET /ticket?track=&e=` (HESK's lookup, redirecting to
//! the signed link), `GET /t/{ID}/{token}` (the ticket), `GET /t/{ID}/{token}/files/{sha256}`
//! (an attachment), `GET /healthz`, `GET /metrics`, `GET /robots.txt`.
//!
//! Invariants: only GET (and HEAD); the database connections are opened read-only; a wrong
//! ID, a wrong address and a wrong token give the same page and status; failed lookups are
//! counted per client and lock it out (HESK: 5, then 60 minutes); every response carries the
//! security headers of [`security_headers`].

mod cache;
mod files;
mod handlers;
mod i18n;
pub mod limit;
mod metrics;
pub mod pages;
mod server;
pub mod text;
pub mod view;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};

use crate::blobs::Blobs;
use crate::config::{Config, Language};
use crate::store::Store;
use crate::vitals::Vitals;
use cache::PageCache;
use limit::{IpRange, LookupLimiter};
use pages::Pages;

pub use handlers::ticket_page;
pub use server::{serve, spawn, WebServer};

/// The page's notion of now; tests pass a clock they can move.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Read-only connections shared by the handlers; a busy one is skipped.
struct ReadPool {
    connections: Vec<Mutex<Store>>,
    next: AtomicUsize,
}

impl ReadPool {
    fn with<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        for connection in &self.connections {
            if let Ok(store) = connection.try_lock() {
                return f(&store);
            }
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        // A panic in another request leaves the connection usable: SQLite state is per call.
        let store = self.connections[index]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f(&store)
    }
}

/// Counters the page keeps itself (the rest of `/metrics` comes from the database).
#[derive(Default)]
struct Counters {
    lookup_failures: AtomicU64,
    lockouts: AtomicU64,
    tickets_shown: AtomicU64,
}

struct Shared {
    db: ReadPool,
    pages: Pages,
    secret: Vec<u8>,
    blobs: Blobs,
    limiter: LookupLimiter,
    proxies: Vec<IpRange>,
    agent_names: HashMap<String, String>,
    support_name: String,
    language: Language,
    clock: Clock,
    counters: Counters,
    cache: PageCache,
    vitals: Option<Arc<Vitals>>,
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    shared: Arc<Shared>,
}

/// How many read-only connections the page keeps.
const READ_CONNECTIONS: usize = 4;

impl WebState {
    /// The page's state for `config`: read-only connections to its database, the compiled
    /// templates (with overrides), the lookup limiter and the secret of the tracking links.
    pub fn new(config: &Config, secret: &[u8]) -> anyhow::Result<WebState> {
        let connections = (0..READ_CONNECTIONS)
            .map(|_| Store::open_read_only(&config.general.database).map(Mutex::new))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let pages = Pages::new(
            config.general.templates_dir.as_deref(),
            &config.general.support_name,
        )?;
        let proxies = config
            .web
            .trusted_proxies
            .iter()
            .map(|p| IpRange::parse(p).with_context(|| format!("[web] trusted_proxies: {p:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let lock_ms = i64::try_from(config.web.lookup_lock.as_millis()).unwrap_or(i64::MAX);
        Ok(WebState {
            shared: Arc::new(Shared {
                db: ReadPool {
                    connections,
                    next: AtomicUsize::new(0),
                },
                pages,
                secret: secret.to_vec(),
                blobs: Blobs::new(&config.general.data_dir),
                limiter: LookupLimiter::new(config.web.lookup_failures_before_lock, lock_ms),
                proxies,
                agent_names: config
                    .agents
                    .iter()
                    .map(|a| (a.email.as_str().to_string(), a.name.clone()))
                    .collect(),
                support_name: config.general.support_name.clone(),
                language: config.general.language,
                clock: Arc::new(Utc::now),
                counters: Counters::default(),
                cache: PageCache::default(),
                vitals: None,
            }),
        })
    }

    /// The same state with another clock (tests).
    pub fn with_clock(self, clock: Clock) -> WebState {
        match Arc::try_unwrap(self.shared) {
            Ok(mut shared) => {
                shared.clock = clock;
                WebState {
                    shared: Arc::new(shared),
                }
            }
            Err(shared) => WebState { shared },
        }
    }

    /// The same state watching the daemon's `vitals`: `/healthz` then also needs a recent
    /// intake heartbeat, and `/metrics` shows the intake and auto-close figures.
    pub fn with_vitals(self, vitals: Arc<Vitals>) -> WebState {
        match Arc::try_unwrap(self.shared) {
            Ok(mut shared) => {
                shared.vitals = Some(vitals);
                WebState {
                    shared: Arc::new(shared),
                }
            }
            Err(shared) => WebState { shared },
        }
    }

    fn now(&self) -> DateTime<Utc> {
        (self.shared.clock)()
    }
}

/// The page's router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`
/// so lookups are counted per client; without it all clients count as one.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(handlers::form))
        .route("/ticket", get(handlers::lookup))
        .route("/t/{id}/{token}", get(handlers::ticket))
        .route("/t/{id}/{token}/files/{sha256}", get(files::file))
        .route("/healthz", get(handlers::healthz))
        .route("/metrics", get(handlers::metrics))
        .route("/robots.txt", get(handlers::robots))
        .fallback(handlers::not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The page's Content-Security-Policy: nothing but inline style and same-origin images;
/// forms only to ourselves; never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the security headers to every response.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 6] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("x-robots-tag"), "noindex, nofollow"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
