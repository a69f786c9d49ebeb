//! The auto-close sweep (PRODUCT.md §5): tickets in `replied` whose customer stayed silent
//! for `auto_close_after` are resolved by "auto" and the customer gets `ticket_closed`.
//!
//! Used by the daemon's schedule and by `postdesk close-stale`. The rule is evaluated "as of"
//! a time the caller gives; the records (closed_at, event, outbox row) carry the real time
//! of the change. Tickets are read and closed in batches, each batch one transaction in which
//! every ticket's rule is re-checked (a customer reply that landed since the read wins), so a
//! sweep that fails half-way leaves only whole batches behind and the next sweep finishes it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::info;

use super::{JobContext, JobReport};
use crate::model::TrackingId;
use crate::outbound::message_id;
use crate::store::{time_from_ms, Closer, StatusChange, Store};

/// Tickets read per batch; each batch is closed in one transaction before the next is read.
/// One transaction writes each touched page to the WAL once, instead of once per ticket;
/// 1,000 closes hold the write lock for some tens of milliseconds.
const BATCH: usize = 1000;

/// What the sweep needs besides the store.
#[derive(Debug, Clone)]
pub struct AutoCloseSettings {
    /// `[tickets] auto_close_after`.
    pub after: Duration,
    /// The domain of our Message-IDs.
    pub message_id_domain: String,
    /// The HMAC key for our Message-IDs.
    pub secret: Vec<u8>,
}

/// What one sweep did (or, dry, would do); `close-stale --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// The time the rule was evaluated at.
    pub as_of: DateTime<Utc>,
    /// True when nothing was changed.
    pub dry_run: bool,
    /// Tickets resolved by this sweep.
    pub closed: Vec<TrackingId>,
    /// Tickets a real sweep would resolve (dry run only).
    pub would_close: Vec<TrackingId>,
}

/// One sweep as of `as_of_ms`, stamping changes with `now_ms`. A dry run only lists.
pub fn sweep(
    store: &mut Store,
    settings: &AutoCloseSettings,
    as_of_ms: i64,
    now_ms: i64,
    dry_run: bool,
) -> rusqlite::Result<SweepReport> {
    let mut report = SweepReport {
        as_of: time_from_ms(as_of_ms),
        dry_run,
        closed: Vec::new(),
        would_close: Vec::new(),
    };
    if dry_run {
        let due = store.due_for_auto_close(as_of_ms, settings.after, usize::MAX)?;
        report.would_close = due.into_iter().map(|d| d.tracking_id).collect();
        return Ok(report);
    }
    let closer = Closer::Auto {
        as_of_ms,
        after: settings.after,
    };
    loop {
        let due = store.due_for_auto_close(as_of_ms, settings.after, BATCH)?;
        let batch: Vec<(TrackingId, String)> = due
            .iter()
            .map(|ticket| {
                let id = &ticket.tracking_id;
                let mid =
                    message_id::generate(Some(id), &settings.message_id_domain, &settings.secret);
                (id.clone(), mid)
            })
            .collect();
        let changes = store.close_tickets(&batch, closer, now_ms)?;
        let mut closed_in_batch = 0;
        for ((id, _), change) in batch.into_iter().zip(changes) {
            // Refused means the customer wrote since the read: the ticket is no longer due.
            if let StatusChange::Changed { .. } = change {
                info!(ticket = %id, "Ticket auto-closed");
                report.closed.push(id);
                closed_in_batch += 1;
            }
        }
        // A short batch was the last; a batch that closed nothing cannot shrink the next.
        if due.len() < BATCH || closed_in_batch == 0 {
            return Ok(report);
        }
    }
}

/// The scheduled job: one sweep as of now.
pub fn run(context: &mut JobContext, now_ms: i64) -> anyhow::Result<JobReport> {
    let report = sweep(
        &mut context.store,
        &context.auto_close,
        now_ms,
        now_ms,
        false,
    )?;
    let closed = report.closed.len();
    info!(closed, "Auto-close sweep");
    Ok(JobReport {
        changed: closed,
        queued: closed,
    })
}
