//! `/metrics` in the Prometheus text format: tickets by status, inbound mail by outcome, the
//! outbox, and the page's own lookup counters. Gathered from the database per scrape (three
//! small aggregate queries), so the numbers hold across restarts.

use std::fmt::Write;
use std::sync::atomic::Ordering;

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
    let web = |value: u64| one(i64::try_from(value).unwrap_or(i64::MAX));
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
            },
            lookup_failures: 2,
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
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
