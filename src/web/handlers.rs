//! The route handlers. Each is a thin async wrapper around a synchronous function that runs
//! on tokio's blocking pool, because SQLite calls block.
//!
//! Invariants: a lookup that fails for any reason — unknown ID, wrong address, bad token,
//! malformed ID — answers with the same page and status (404), and counts as a failure for
//! the client; a locked-out client gets 429 before any lookup is made, even for a valid link;
//! the token is compared in constant time, also when the ID names no ticket.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::{error, warn};

use super::cache;
use super::i18n::relative_time_changes_at;
use super::limit::client_ip;
use super::pages::LookupNotice;
use super::view::{ticket_view, ViewSettings};
use super::{metrics, WebState};
use crate::config::Language;
use crate::model::{EmailAddress, Ticket, TrackingId};
use crate::signing::{tracking_token, verify_tracking_token};

/// The client's address (see [`client_ip`]).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<WebState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(ClientIp(client_ip(peer, &forwarded, &state.shared.proxies)))
    }
}

/// Query parameters the pages understand.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    lang: Option<String>,
    track: Option<String>,
    e: Option<String>,
}

/// Why a lookup was refused.
pub(super) enum Refusal {
    NotFound,
    Locked {
        ms_left: i64,
    },
    /// The database failed; not the client's fault, not counted.
    Broken(String),
}

impl WebState {
    pub(super) fn language(&self, params: &Params) -> Language {
        params
            .lang
            .as_deref()
            .and_then(Language::parse)
            .unwrap_or(self.shared.language)
    }

    fn failed(&self, ip: IpAddr, now_ms: i64) -> Refusal {
        self.shared
            .counters
            .lookup_failures
            .fetch_add(1, Ordering::Relaxed);
        if self.shared.limiter.record_failure(ip, now_ms) {
            self.shared
                .counters
                .lockouts
                .fetch_add(1, Ordering::Relaxed);
            warn!(client = %ip, "Tracking page lookups locked for this client after repeated failures");
        }
        Refusal::NotFound
    }

    /// The ticket a personal link names, if the token is right for it.
    pub(super) fn check_link(&self, ip: IpAddr, id: &str, token: &str) -> Result<Ticket, Refusal> {
        let now_ms = self.now().timestamp_millis();
        if let Some(ms_left) = self.shared.limiter.locked(ip, now_ms) {
            return Err(Refusal::Locked { ms_left });
        }
        let id = TrackingId::parse(id);
        let found = match &id {
            Some(id) => self
                .shared
                .db
                .with(|s| s.ticket_by_tracking_id(id))
                .map_err(|e| Refusal::Broken(e.to_string()))?,
            None => None,
        };
        let customer = found
            .as_ref()
            .and_then(|t| EmailAddress::parse(&t.customer_email));
        // Compare against something even when there is no ticket, so the time taken does
        // not tell a real ID from a made-up one.
        let decoy_id = TrackingId::parse("AAA-AAA-AAAA");
        let decoy_customer = EmailAddress::parse("nobody@invalid");
        let verified = match (
            id.as_ref().or(decoy_id.as_ref()),
            customer.as_ref().or(decoy_customer.as_ref()),
        ) {
            (Some(id), Some(customer)) => {
                verify_tracking_token(&self.shared.secret, id, customer, token)
            }
            _ => false,
        };
        match found {
            Some(ticket) if verified && customer.is_some() => Ok(ticket),
            _ => Err(self.failed(ip, now_ms)),
        }
    }

    pub(super) fn refusal(&self, lang: Language, refusal: Refusal) -> Response {
        let (status, notice, retry) = match refusal {
            Refusal::NotFound => (StatusCode::NOT_FOUND, LookupNotice::NotFound, None),
            Refusal::Broken(error) => return internal_error(error),
            Refusal::Locked { ms_left } => {
                let seconds = (ms_left + 999) / 1000;
                let minutes = (seconds + 59) / 60;
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    LookupNotice::Locked(minutes),
                    Some(seconds),
                )
            }
        };
        let mut response = match self.shared.pages.lookup(lang, notice) {
            Ok(html) => html_response(status, html),
            Err(e) => return internal_error(e),
        };
        if let Some(seconds) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn html_response(status: StatusCode, html: String) -> Response {
    let content_type = HeaderValue::from_static("text/html; charset=utf-8");
    (status, [(header::CONTENT_TYPE, content_type)], html).into_response()
}

pub(super) fn internal_error(error: impl std::fmt::Display) -> Response {
    error!(error = %error, "Tracking page request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}

pub(super) async fn blocking(work: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(internal_error)
}

/// `GET /`: the lookup form.
pub async fn form(State(state): State<WebState>, Query(params): Query<Params>) -> Response {
    let lang = state.language(&params);
    match state.shared.pages.lookup(lang, LookupNotice::None) {
        Ok(html) => html_response(StatusCode::OK, html),
        Err(e) => internal_error(e),
    }
}

/// `GET /ticket?track=&e=`: HESK's lookup; redirects to the personal link.
pub async fn lookup(
    State(state): State<WebState>,
    ClientIp(ip): ClientIp,
    Query(params): Query<Params>,
) -> Response {
    blocking(move || lookup_redirect(&state, ip, &params)).await
}

fn lookup_redirect(state: &WebState, ip: IpAddr, params: &Params) -> Response {
    let lang = state.language(params);
    let track = params.track.as_deref().unwrap_or("");
    let email = params.e.as_deref().unwrap_or("");
    if track.trim().is_empty() && email.trim().is_empty() {
        return match state.shared.pages.lookup(lang, LookupNotice::None) {
            Ok(html) => html_response(StatusCode::OK, html),
            Err(e) => internal_error(e),
        };
    }
    let now_ms = state.now().timestamp_millis();
    if let Some(ms_left) = state.shared.limiter.locked(ip, now_ms) {
        return state.refusal(lang, Refusal::Locked { ms_left });
    }
    let (Some(id), Some(address)) = (TrackingId::parse(track), EmailAddress::parse(email)) else {
        return state.refusal(lang, state.failed(ip, now_ms));
    };
    match state
        .shared
        .db
        .with(|s| s.ticket_by_tracking_id_and_email(&id, &address))
    {
        Ok(Some(_)) => {
            let token = tracking_token(&state.shared.secret, &id, &address);
            let lang_suffix = match params.lang.as_deref().and_then(Language::parse) {
                Some(lang) => format!("?lang={}", lang.as_str()),
                None => String::new(),
            };
            // Relative, so the page also works under a path prefix behind a proxy.
            let location = format!("t/{id}/{token}{lang_suffix}");
            (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
        }
        Ok(None) => state.refusal(lang, state.failed(ip, now_ms)),
        Err(e) => internal_error(e),
    }
}

/// `GET /t/{ID}/{token}`: the ticket.
pub async fn ticket(
    State(state): State<WebState>,
    ClientIp(ip): ClientIp,
    Path((id, token)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Response {
    let lang = state.language(&params);
    blocking(move || ticket_page(&state, ip, &id, &token, lang)).await
}

/// The ticket page for a personal link (synchronous; also what the benchmark measures).
/// The token is checked on every request; then a cached page of the same version that no
/// relative time has outdated is served, else the page is rendered and kept.
pub fn ticket_page(
    state: &WebState,
    ip: IpAddr,
    id: &str,
    token: &str,
    lang: Language,
) -> Response {
    let ticket = match state.check_link(ip, id, token) {
        Ok(ticket) => ticket,
        Err(refusal) => return state.refusal(lang, refusal),
    };
    let last_message = match state.shared.db.with(|s| s.last_message_row(ticket.number)) {
        Ok(row) => row,
        Err(e) => return internal_error(e),
    };
    let version = cache::version(&ticket, last_message);
    let now = state.now();
    let cached = state.shared.cache.get(
        ticket.tracking_id.as_str(),
        lang,
        version,
        now.timestamp_millis(),
    );
    let html = match cached {
        Some(html) => html,
        None => match render_ticket(state, &ticket, token, lang, now) {
            Ok((html, expires)) => {
                let html = Bytes::from(html);
                state.shared.cache.put(
                    ticket.tracking_id.as_str(),
                    lang,
                    version,
                    expires.timestamp_millis(),
                    html.clone(),
                );
                html
            }
            Err(e) => return internal_error(format!("{e:#}")),
        },
    };
    state
        .shared
        .counters
        .tickets_shown
        .fetch_add(1, Ordering::Relaxed);
    let content_type = HeaderValue::from_static("text/html; charset=utf-8");
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], html).into_response()
}

/// The page of `ticket` as of `now`, and when a relative time on it first changes.
fn render_ticket(
    state: &WebState,
    ticket: &Ticket,
    token: &str,
    lang: Language,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(String, chrono::DateTime<chrono::Utc>)> {
    let thread = state
        .shared
        .db
        .with(|s| s.thread(&ticket.tracking_id, false))?;
    let settings = ViewSettings {
        agent_names: &state.shared.agent_names,
        support_name: &state.shared.support_name,
        lang,
        now,
        ticket_path: token,
    };
    let view = ticket_view(ticket, &thread, &settings);
    let expires = [ticket.created_at, ticket.updated_at]
        .into_iter()
        .chain(thread.iter().map(|m| m.created_at))
        .map(|at| relative_time_changes_at(at, now))
        .min()
        .unwrap_or(now);
    Ok((state.shared.pages.ticket(lang, &view)?, expires))
}

pub(super) fn not_found_text() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Any other path.
pub async fn not_found() -> Response {
    not_found_text()
}

/// `GET /healthz`: `ok` when the database answers and (in the daemon) the intake heartbeat
/// is recent and intake can store mail; else 503 with the reasons, one a line.
pub async fn healthz(State(state): State<WebState>) -> Response {
    blocking(move || {
        let mut problems = Vec::new();
        if !state.shared.db.with(|s| s.ping()) {
            problems.push("database: not answering".to_string());
        }
        if let Some(vitals) = &state.shared.vitals {
            problems.extend(vitals.health_problems(state.now().timestamp_millis()));
        }
        if problems.is_empty() {
            (StatusCode::OK, "ok\n").into_response()
        } else {
            let body = problems.join("\n") + "\n";
            (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
        }
    })
    .await
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<WebState>) -> Response {
    blocking(move || match metrics::gather(&state) {
        Ok(text) => {
            let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
            (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], text).into_response()
        }
        Err(e) => internal_error(e),
    })
    .await
}

/// `GET /robots.txt`: nothing here is for crawlers.
pub async fn robots() -> &'static str {
    "User-agent: *\nDisallow: /\n"
}
