//! The operator commands behind `postdesk close-stale`, `tickets …` and `quarantine …`: each
//! opens what it needs from the config, makes one change through the store (the same
//! transitions and mails as the mail path) or reads, and prints for people or, with `--json`,
//! for scripts. Mail a command queued is sent right away; if that fails it stays queued for
//! the daemon.
//!
//! A refused change (closing a resolved ticket, reopening an open one, an unknown ID) is an
//! error: the binary exits non-zero with the reason, and nothing was changed or sent.

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tracing::error;

use crate::config::{parse_duration, Config};
use crate::jobs::auto_close;
use crate::model::{EmailAddress, TrackingId};
use crate::outbound::message_id;
use crate::store::{Closer, StatusChange, TicketFilter};
use crate::{app, cli, secret};

/// Parses `--now`: an RFC 3339 time such as `2026-11-25T10:00:00Z`.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}; write an RFC 3339 time such as 2026-11-25T10:00:00Z"))
}

/// Parses `--since`: an RFC 3339 time, or a duration back from `now` such as `7d` or `12h`.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = parse_time(text) {
        return Ok(time);
    }
    let back = parse_duration(text)
        .map_err(|e| format!("{e}; or write an RFC 3339 time such as 2026-11-25T10:00:00Z"))?;
    let back = chrono::Duration::from_std(back).map_err(|e| e.to_string())?;
    now.checked_sub_signed(back)
        .ok_or_else(|| format!("{text:?} reaches back before any date"))
}

/// Sends what a command queued now; a failure is logged and the daemon sends it later.
fn send_queued(config: &Config) {
    let sent = secret::load_or_create(&config.general.secret_file)
        .and_then(|secret| app::worker(config, &secret))
        .and_then(|mut w| w.send_due(app::now_ms()));
    if let Err(error) = sent {
        error!(error = %format!("{error:#}"), "Queued mail not sent yet; the daemon will retry");
    }
}

fn write_json(out: &mut impl Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `close-stale`: one auto-close sweep as of `as_of` (default now); `dry_run` only lists.
pub fn close_stale(
    config: &Config,
    as_of: Option<DateTime<Utc>>,
    dry_run: bool,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let secret = secret::load_or_create(&config.general.secret_file)?;
    let settings = app::auto_close_settings(config, &secret);
    let mut store = app::open_store(config)?;
    let now = app::now_ms();
    let as_of = as_of.map_or(now, |t| t.timestamp_millis());
    let report = auto_close::sweep(&mut store, &settings, as_of, now, dry_run)
        .context("while closing stale tickets")?;
    if !report.closed.is_empty() {
        send_queued(config);
    }
    if json {
        write_json(out, &report)
    } else {
        Ok(cli::print_sweep(out, &report)?)
    }
}

/// `tickets list`.
pub fn list_tickets(
    config: &Config,
    filter: &TicketFilter,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let tickets = app::open_store(config)?.list_tickets(filter)?;
    if json {
        write_json(out, &tickets)
    } else {
        Ok(cli::print_ticket_table(out, &tickets)?)
    }
}

/// The filter `tickets list` options describe; the customer address is checked here.
pub fn ticket_filter(
    status: Option<crate::model::TicketStatus>,
    customer: Option<&str>,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<TicketFilter> {
    let customer = match customer {
        Some(text) => Some(
            EmailAddress::parse(text)
                .with_context(|| format!("--customer {text:?} is not an email address"))?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    Ok(TicketFilter {
        status,
        customer,
        updated_since: since.map(|t| t.timestamp_millis()),
    })
}

/// `tickets show`.
pub fn show_ticket(
    config: &Config,
    id: &TrackingId,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let store = app::open_store(config)?;
    let ticket = store
        .ticket_by_tracking_id(id)?
        .with_context(|| format!("no ticket {id}"))?;
    let thread = store.thread(id, true)?;
    if json {
        let shown = cli::TicketWithThread {
            ticket: &ticket,
            messages: &thread,
        };
        write_json(out, &shown)
    } else {
        Ok(cli::print_ticket(out, &ticket, &thread)?)
    }
}

/// `tickets close`: resolved by `cli`; the customer gets `ticket_closed` as after `#close`.
pub fn close_ticket(config: &Config, id: &TrackingId, out: &mut impl Write) -> anyhow::Result<()> {
    let secret = secret::load_or_create(&config.general.secret_file)?;
    let domain = config.general.support_address.domain();
    let mid = message_id::generate(Some(id), domain, &secret);
    let change =
        app::open_store(config)?.close_ticket(id, Closer::Operator, app::now_ms(), &mid)?;
    let StatusChange::Changed { from, to, .. } = refused_or_missing(id, "close", change)? else {
        return Ok(());
    };
    send_queued(config);
    writeln!(
        out,
        "Closed {id} ({from} → {to}); the customer is sent \"Ticket closed/resolved\"."
    )?;
    Ok(())
}

/// `tickets reopen`: back to `waiting_reply` as after `#reopen`; nothing is sent.
pub fn reopen_ticket(config: &Config, id: &TrackingId, out: &mut impl Write) -> anyhow::Result<()> {
    let change = app::open_store(config)?.reopen_ticket(id, app::now_ms())?;
    let StatusChange::Changed { from, to, .. } = refused_or_missing(id, "reopen", change)? else {
        return Ok(());
    };
    writeln!(
        out,
        "Reopened {id} ({from} → {to}); nothing is sent, the agents take it from here."
    )?;
    Ok(())
}

fn refused_or_missing(
    id: &TrackingId,
    verb: &str,
    change: StatusChange,
) -> anyhow::Result<StatusChange> {
    match change {
        StatusChange::NotFound => {
            anyhow::bail!("no ticket {id}; `postdesk tickets list` shows the IDs")
        }
        StatusChange::Refused { status, refusal } => anyhow::bail!(
            "cannot {verb} {id}: {refusal} (status {status}); nothing was changed or sent"
        ),
        changed => Ok(changed),
    }
}

/// `quarantine list`.
pub fn list_quarantine(config: &Config, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let mails = app::open_store(config)?.quarantined()?;
    if json {
        write_json(out, &mails)
    } else {
        Ok(cli::print_quarantine(out, &mails)?)
    }
}

/// `quarantine retry`: the mail goes through intake again (see `intake/retry.rs`), and the
/// new outcome is printed.
pub fn retry_quarantined(
    config: &Config,
    id: i64,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let secret = secret::load_or_create(&config.general.secret_file)?;
    let mut intake = app::intake(config, &secret)?;
    let outcome = intake
        .retry_quarantined(id, app::now_ms())
        .with_context(|| format!("while retrying quarantine entry {id}; it is kept"))?
        .with_context(|| {
            format!("no quarantined mail with ID {id}; `postdesk quarantine list` shows the IDs")
        })?;
    if outcome.queued > 0 {
        send_queued(config);
    }
    if json {
        write_json(out, &outcome)
    } else {
        Ok(cli::print_retry(out, id, &outcome)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration_back_from_now() {
        let now = parse_time("2026-11-25T10:00:00Z").expect("now");
        let table = [
            (
                "2026-11-20T08:30:00+02:00",
                Some("2026-11-20T06:30:00+00:00"),
            ),
            ("7d", Some("2026-11-18T10:00:00+00:00")),
            ("36h", Some("2026-11-23T22:00:00+00:00")),
            ("7", None),
            ("last week", None),
        ];
        for (text, expected) in table {
            let got = parse_since(text, now).ok().map(|t| t.to_rfc3339());
            assert_eq!(got.as_deref(), expected, "{text}");
        }
        assert!(parse_time("tomorrow").unwrap_err().contains("RFC 3339"));
    }
}
