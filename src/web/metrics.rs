//! `/metrics` in the Prometheus text format: tickets by status, inbound mail by outcome, the
//! outbox (depth, oldest pending age, sent/failed/suppressed), and the page's own lookup
//! counters — gathered from the database per scrape (three small aggregate queries), so they
//! hold across restarts — plus, in the daemon, the intake heartbeat, the IMAP connection and
//! the auto-close counters from [`crate::vitals`] (in memory, since start).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::cache::CacheStats;
use super::WebState;
use crate::model::TicketStatus;
use crate::store::OutboxStats;

/// The outcomes intake records (`inbound.outcome`), always listed so that rates start at 0.
const INBOUND_OUTCOMES: [&str; 5] = [
    "ticket_opened",
    "appended",
    "attached_auto",
    "ignored",
    "quarantined",
];

/// Everything `/metrics` shows, as plain values.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Tickets per status (`tickets.status`).
    pub tickets: Vec<(String, i64)>,
    /// Inbound mails per outcome.
    pub inbound: Vec<(String, i64)>,
    /// Outbox counts.
    pub outbox: OutboxStats,
    /// Failed lookups since start.
    pub lookup_failures: u64,
    /// Lockouts since start.
    pub lockouts: u64,
    /// Ticket pages served since start.
    pub tickets_shown: u64,
    /// The page cache's hits, misses and size.
    pub page_cache: CacheStats,
    /// When the snapshot was taken, in ms since the epoch.
    pub now_ms: i64,
    /// The daemon's live figures (absent when the page runs without a daemon).
    pub daemon: Option<DaemonFigures>,
}

/// The figures [`crate::vitals::Vitals`] holds, as plain values.
#[derive(Debug, Default)]
pub struct DaemonFigures {
    /// `Some(connected)` when the source is IMAP.
    pub imap_connected: Option<bool>,
    /// The last intake heartbeat, ms since the epoch.
    pub last_beat_ms: i64,
    /// The last complete read of the source (IMAP poll/IDLE catch-up, Maildir scan).
    pub last_sync_ms: i64,
    /// Auto-close sweeps since start.
    pub auto_close_runs: u64,
    /// Tickets those sweeps resolved.
    pub auto_closed: u64,
}

fn count(pairs: &[(String, i64)], key: &str) -> i64 {
    pairs.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n)
}

/// The Prometheus text for a snapshot (pure).
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(2048);
    let mut family = |name: &str, kind: &str, help: &str, rows: &[(String, i64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let labelled = |label: &str, keys: &[&str], pairs: &[(String, i64)]| -> Vec<(String, i64)> {
        keys.iter()
            .map(|k| (format!("{{{label}=\"{k}\"}}"), count(pairs, k)))
            .collect()
    };
    let statuses: Vec<&str> = TicketStatus::ALL.iter().map(|t| t.as_str()).collect();
    family(
        "postdesk_tickets",
        "gauge",
        "Tickets by status.",
        &labelled("status", &statuses, &s.tickets),
    );
    family(
        "postdesk_inbound_mails_total",
        "counter",
        "Inbound mails by what became of them.",
        &labelled("outcome", &INBOUND_OUTCOMES, &s.inbound),
    );
    let one = |value: i64| vec![(String::new(), value)];
    family(
        "postdesk_outbox_pending",
        "gauge",
        "Mails queued or in flight.",
        &one(s.outbox.pending),
    );
    family(
        "postdesk_mails_sent_total",
        "counter",
        "Mails handed to the transport.",
        &one(s.outbox.sent),
    );
    family(
        "postdesk_mails_failed_total",
        "counter",
        "Mails given up after permanent failures or retries.",
        &one(s.outbox.failed),
    );
    family(
        "postdesk_mails_suppressed_total",
        "counter",
        "Mails not sent by the loop-safety rules.",
        &one(s.outbox.suppressed),
    );
    let oldest_age_s = s
        .outbox
        .oldest_pending_ms
        .map_or(0, |queued| (s.now_ms - queued).max(0) / 1000);
    family(
        "postdesk_outbox_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest mail still waiting to be sent (0 when none).",
        &one(oldest_age_s),
    );
    let web = |value: u64| one(i64::try_from(value).unwrap_or(i64::MAX));
    if let Some(d) = &s.daemon {
        family(
            "postdesk_intake_heartbeat_timestamp_seconds",
            "gauge",
            "When the intake loop last showed it is alive (Unix time).",
            &one(d.last_beat_ms / 1000),
        );
        family(
            "postdesk_intake_last_sync_timestamp_seconds",
            "gauge",
            "When the source was last read completely: IMAP poll or IDLE catch-up, Maildir scan (Unix time, 0: not yet).",
            &one(d.last_sync_ms / 1000),
        );
        if let Some(connected) = d.imap_connected {
            family(
                "postdesk_imap_connected",
                "gauge",
                "1 while the IMAP session is connected.",
                &one(i64::from(connected)),
            );
        }
        family(
            "postdesk_auto_close_runs_total",
            "counter",
            "Auto-close sweeps since start.",
            &web(d.auto_close_runs),
        );
        family(
            "postdesk_auto_closed_tickets_total",
            "counter",
            "Tickets resolved by auto-close since start.",
            &web(d.auto_closed),
        );
    }
    family(
        "postdesk_web_lookup_failures_total",
        "counter",
        "Failed tracking page lookups since start.",
        &web(s.lookup_failures),
    );
    family(
        "postdesk_web_lockouts_total",
        "counter",
        "Clients locked out of lookups since start.",
        &web(s.lockouts),
    );
    family(
        "postdesk_web_ticket_views_total",
        "counter",
        "Ticket pages served since start.",
        &web(s.tickets_shown),
    );
    family(
        "postdesk_page_cache_hits_total",
        "counter",
        "Ticket pages served from the page cache since start.",
        &web(s.page_cache.hits),
    );
    family(
        "postdesk_page_cache_misses_total",
        "counter",
        "Ticket pages rendered because the cache had no current copy, since start.",
        &web(s.page_cache.misses),
    );
    family(
        "postdesk_page_cache_bytes",
        "gauge",
        "Bytes of rendered pages held in the page cache.",
        &web(s.page_cache.bytes as u64),
    );
    out
}

/// Reads a snapshot and renders it.
pub fn gather(state: &WebState) -> rusqlite::Result<String> {
    let shared = &state.shared;
    let (tickets, inbound, outbox) = shared.db.with(|store| {
        Ok::<_, rusqlite::Error>((
            store.tickets_by_status()?,
            store.inbound_tally()?,
            store.outbox_stats()?,
        ))
    })?;
    Ok(render(&Snapshot {
        tickets,
        inbound,
        outbox,
        lookup_failures: shared.counters.lookup_failures.load(Ordering::Relaxed),
        lockouts: shared.counters.lockouts.load(Ordering::Relaxed),
        tickets_shown: shared.counters.tickets_shown.load(Ordering::Relaxed),
        page_cache: shared.cache.stats(),
        now_ms: state.now().timestamp_millis(),
        daemon: shared.vitals.as_ref().map(|v| {
            let (auto_close_runs, auto_closed) = v.auto_close_counts();
            DaemonFigures {
                imap_connected: v.imap.then(|| v.connected()),
                last_beat_ms: v.last_beat_ms(),
                last_sync_ms: v.last_sync_ms(),
                auto_close_runs,
                auto_closed,
            }
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_and_outcome_is_listed() {
        let text = render(&Snapshot {
            tickets: vec![("new".into(), 3)],
            inbound: vec![("ticket_opened".into(), 3), ("ignored".into(), 1)],
            outbox: OutboxStats {
                pending: 1,
                sent: 5,
                failed: 0,
                suppressed: 2,
                oldest_pending_ms: Some(40_000),
            },
            lookup_failures: 2,
            page_cache: CacheStats {
                hits: 7,
                misses: 3,
                pages: 2,
                bytes: 4096,
            },
            now_ms: 100_000,
            daemon: Some(DaemonFigures {
                imap_connected: Some(true),
                last_beat_ms: 99_500,
                last_sync_ms: 99_000,
                auto_close_runs: 3,
                auto_closed: 4,
            }),
            ..Snapshot::default()
        });
        for line in [
            "# TYPE postdesk_tickets gauge",
            "postdesk_tickets{status=\"new\"} 3",
            "postdesk_tickets{status=\"resolved\"} 0",
            "postdesk_inbound_mails_total{outcome=\"ticket_opened\"} 3",
            "postdesk_inbound_mails_total{outcome=\"quarantined\"} 0",
            "postdesk_outbox_pending 1",
            "postdesk_mails_sent_total 5",
            "postdesk_web_lookup_failures_total 2",
            "postdesk_mails_suppressed_total 2",
            "postdesk_outbox_oldest_pending_age_seconds 60",
            "postdesk_intake_heartbeat_timestamp_seconds 99",
            "postdesk_intake_last_sync_timestamp_seconds 99",
            "postdesk_imap_connected 1",
            "postdesk_auto_close_runs_total 3",
            "postdesk_auto_closed_tickets_total 4",
            "postdesk_page_cache_hits_total 7",
            "postdesk_page_cache_misses_total 3",
            "postdesk_page_cache_bytes 4096",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
