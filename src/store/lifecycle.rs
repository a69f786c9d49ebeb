//! The lifecycle side of the store: which tickets are due for auto-close, and closing or
//! reopening one ticket outside the mail path (the schedule, an operator).
//!
//! Invariants: each change is one IMMEDIATE transaction that updates the ticket, writes an
//! event (actor, from and to status) and queues the customer's `ticket_closed` when it closes;
//! the decision comes from [`crate::lifecycle::transition`]; an auto-close re-checks the
//! whole due condition in its UPDATE, so a customer reply that lands between the sweep's read
//! and its write is never overridden.

use std::time::Duration;

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::intake::insert_event;
use super::notify::customer_latest_message_id;
use super::outbox::{insert_outbox, NewOutboxRow};
use super::Store;
use crate::lifecycle::{self, CloseFacts, Event, Refusal};
use crate::model::{Template, TicketStatus, TrackingId};
use crate::outbound::guard::SendPolicy;

/// A ticket the auto-close sweep found due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTicket {
    /// The ticket.
    pub tracking_id: TrackingId,
    /// When an agent last replied (ms).
    pub last_agent_at: i64,
}

/// Who closes a ticket outside the mail path, and under which condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    /// The auto-close schedule: only while the ticket is still due as of `as_of_ms`.
    Auto {
        /// The time the rule is evaluated at (ms).
        as_of_ms: i64,
        /// `[tickets] auto_close_after`.
        after: Duration,
    },
    /// An operator (`tickets close`): any ticket that is not resolved yet.
    Operator,
}

/// What a close or reopen did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// The status changed; `queued` mails were queued with it.
    Changed {
        /// The status before.
        from: TicketStatus,
        /// The status after.
        to: TicketStatus,
        /// Mails queued in the same transaction.
        queued: usize,
    },
    /// Nothing changed, and nothing was queued.
    Refused {
        /// The ticket's status.
        status: TicketStatus,
        /// Why.
        refusal: Refusal,
    },
    /// No ticket has that tracking ID.
    NotFound,
}

/// The ticket columns a close or reopen needs.
struct Current {
    id: i64,
    facts: CloseFacts,
    customer_email: String,
    customer_name: String,
    language: String,
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Up to `limit` tickets due for auto-close as of `now_ms`: status `replied`, the last
    /// agent reply at or before `now_ms - after`, and no customer message since; oldest reply
    /// first. Served by the partial index `tickets_due_for_auto_close`, so it reads only
    /// tickets in `replied` old enough, never the whole table.
    pub fn due_for_auto_close(
        &self,
        now_ms: i64,
        after: Duration,
        limit: usize,
    ) -> rusqlite::Result<Vec<DueTicket>> {
        let mut statement = self.conn.prepare_cached(DUE_SQL)?;
        let cutoff = now_ms.saturating_sub(ms(after));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![cutoff, limit], |row| {
            let tracking: String = row.get(0)?;
            Ok((tracking, row.get::<_, i64>(1)?))
        })?;
        let mut due = Vec::new();
        for row in rows {
            let (tracking, last_agent_at) = row?;
            // A malformed ID cannot come from our own inserts; skip rather than fail a sweep.
            if let Some(tracking_id) = TrackingId::parse(&tracking) {
                due.push(DueTicket {
                    tracking_id,
                    last_agent_at,
                });
            }
        }
        Ok(due)
    }

    /// Resolves a ticket for `closer` in one transaction: the ticket (`closed_at`,
    /// `closed_by`), a `status` event, and `ticket_closed` to the customer (in the ticket's
    /// language, under `message_id`, threaded to the customer's last mail). `now_ms` stamps
    /// the records.
    pub fn close_ticket(
        &mut self,
        id: &TrackingId,
        closer: Closer,
        now_ms: i64,
        message_id: &str,
    ) -> rusqlite::Result<StatusChange> {
        let policy = self.send_policy.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let change = close_in(&tx, id, closer, now_ms, message_id, &policy)?;
        tx.commit()?;
        Ok(change)
    }

    /// [`Store::close_ticket`] for many tickets in one transaction (the auto-close sweep):
    /// each ticket is decided and recorded exactly as alone, and either all the changes are
    /// committed or none. Returns one change per ticket, in order.
    pub fn close_tickets(
        &mut self,
        tickets: &[(TrackingId, String)],
        closer: Closer,
        now_ms: i64,
    ) -> rusqlite::Result<Vec<StatusChange>> {
        let policy = self.send_policy.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changes = tickets
            .iter()
            .map(|(id, message_id)| close_in(&tx, id, closer, now_ms, message_id, &policy))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        tx.commit()?;
        Ok(changes)
    }

    /// Reopens a resolved ticket for an operator (`tickets reopen`), like an agent's
    /// `#reopen`: back to `waiting_reply`, `closed_at`/`closed_by` cleared, a `status` event.
    /// Nothing is sent: the customer hears from the agent who takes it up.
    pub fn reopen_ticket(
        &mut self,
        id: &TrackingId,
        now_ms: i64,
    ) -> rusqlite::Result<StatusChange> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(current) = current(&tx, id)? else {
            return Ok(StatusChange::NotFound);
        };
        let from = current.facts.status;
        let event = Event::OperatorReopen;
        let to = match lifecycle::transition(from, event) {
            Ok(to) => to,
            Err(refusal) => {
                return Ok(StatusChange::Refused {
                    status: from,
                    refusal,
                })
            }
        };
        tx.execute(
            "UPDATE tickets SET status = ?2, updated_at = ?3, closed_at = NULL, closed_by = NULL
             WHERE id = ?1 AND status = ?4",
            params![current.id, to.as_str(), now_ms, from.as_str()],
        )?;
        let actor = event.actor().as_str();
        let detail = "reopened from the command line";
        insert_event(
            &tx,
            current.id,
            now_ms,
            actor,
            "status",
            Some(from.as_str()),
            Some(to.as_str()),
            detail,
        )?;
        tx.commit()?;
        Ok(StatusChange::Changed {
            from,
            to,
            queued: 0,
        })
    }
}

/// Selects due tickets. Its WHERE implies the partial index's `status = 'replied'`; without
/// statistics SQLite would rather use `tickets_by_status` (all replied tickets, then a sort),
/// so `INDEXED BY` pins the range scan over `last_agent_at` (and makes the statement fail
/// loudly, not slowly, if the index ever stops matching).
const DUE_SQL: &str = "SELECT tracking_id, last_agent_at FROM tickets
     INDEXED BY tickets_due_for_auto_close
     WHERE status = 'replied' AND last_agent_at <= ?1
       AND (last_customer_at IS NULL OR last_customer_at <= last_agent_at)
     ORDER BY last_agent_at LIMIT ?2";

/// One close inside the caller's transaction (see [`Store::close_ticket`]).
fn close_in(
    tx: &Transaction<'_>,
    id: &TrackingId,
    closer: Closer,
    now_ms: i64,
    message_id: &str,
    policy: &SendPolicy,
) -> rusqlite::Result<StatusChange> {
    let Some(current) = current(tx, id)? else {
        return Ok(StatusChange::NotFound);
    };
    let from = current.facts.status;
    let (event, detail) = match closer {
        Closer::Auto { after, .. } => (
            Event::AutoClose,
            format!(
                "no customer reply for {}s after the agent's",
                after.as_secs()
            ),
        ),
        Closer::Operator => (Event::OperatorClose, "closed from the command line".into()),
    };
    let refused = |refusal| {
        Ok(StatusChange::Refused {
            status: from,
            refusal,
        })
    };
    let to = match lifecycle::transition(from, event) {
        Ok(to) => to,
        Err(refusal) => return refused(refusal),
    };
    let changed = match closer {
        Closer::Auto { as_of_ms, after } => {
            if !lifecycle::is_due_for_auto_close(current.facts, as_of_ms, after) {
                return refused(Refusal::NotDue);
            }
            tx.prepare_cached(
                "UPDATE tickets SET status = 'resolved', updated_at = ?2, closed_at = ?2,
                     closed_by = 'auto'
                 WHERE id = ?1 AND status = 'replied' AND last_agent_at <= ?3
                   AND (last_customer_at IS NULL OR last_customer_at <= last_agent_at)",
            )?
            .execute(params![
                current.id,
                now_ms,
                as_of_ms.saturating_sub(ms(after))
            ])?
        }
        Closer::Operator => tx
            .prepare_cached(
                "UPDATE tickets SET status = 'resolved', updated_at = ?2, closed_at = ?2,
                     closed_by = 'cli'
                 WHERE id = ?1 AND status = ?3",
            )?
            .execute(params![current.id, now_ms, from.as_str()])?,
    };
    if changed != 1 {
        return refused(Refusal::NotDue);
    }
    let actor = event.actor().as_str();
    let (from_text, to_text) = (from.as_str(), to.as_str());
    insert_event(
        tx,
        current.id,
        now_ms,
        actor,
        "status",
        Some(from_text),
        Some(to_text),
        &detail,
    )?;
    let in_reply_to = customer_latest_message_id(tx, current.id)?;
    insert_outbox(
        tx,
        &NewOutboxRow {
            ticket_id: Some(current.id),
            cause_message: None,
            template: Template::TicketClosed,
            recipient_email: &current.customer_email,
            recipient_name: &current.customer_name,
            language: &current.language,
            message_id,
            in_reply_to: in_reply_to.as_deref().unwrap_or_default(),
            now: now_ms,
            policy,
            subject: None,
        },
    )?;
    Ok(StatusChange::Changed {
        from,
        to,
        queued: 1,
    })
}

fn current(conn: &rusqlite::Connection, id: &TrackingId) -> rusqlite::Result<Option<Current>> {
    conn.prepare_cached(
        "SELECT id, status, last_agent_at, last_customer_at, customer_email, customer_name, language
         FROM tickets WHERE tracking_id = ?1",
    )?
    .query_row(
        [id.as_str()],
        |row| {
            let status: String = row.get(1)?;
            let status = TicketStatus::parse(&status).ok_or_else(|| {
                rusqlite::Error::InvalidColumnType(1, "status".into(), rusqlite::types::Type::Text)
            })?;
            Ok(Current {
                id: row.get(0)?,
                facts: CloseFacts {
                    status,
                    last_agent_at: row.get(2)?,
                    last_customer_at: row.get(3)?,
                },
                customer_email: row.get(4)?,
                customer_name: row.get(5)?,
                language: row.get(6)?,
            })
        },
    )
    .optional()
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
