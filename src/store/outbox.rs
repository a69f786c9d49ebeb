//! The outbox: rows written by intake transactions, claimed, sent and marked by the worker.
//!
//! A row moves `pending → sending → sent`, or back to `pending` with a later
//! `next_attempt_at` after a transient failure, or to `failed`. Claiming sets `sending` with a
//! lease (`next_attempt_at` in the near future) before the send, atomically, so two workers
//! never send the same row; a crash between send and mark leaves only that row `sending`, and
//! it is sent again once its lease expires.

use rusqlite::{params, Connection, Row};

use super::Store;
use crate::model::Template;

/// One due mail with what rendering it needs.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Outbox row.
    pub id: i64,
    /// Template name.
    pub template: String,
    /// Recipient address.
    pub recipient_email: String,
    /// Recipient display name.
    pub recipient_name: String,
    /// `en` or `uk`.
    pub language: String,
    /// Automatic mail (`Auto-Submitted`).
    pub automatic: bool,
    /// Our Message-ID for it.
    pub message_id: String,
    /// The inbound Message-ID it answers.
    pub in_reply_to: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When it was queued (ms).
    pub created_at: i64,
    /// The ticket's tracking ID.
    pub tracking_id: Option<String>,
    /// The ticket's subject.
    pub subject: Option<String>,
    /// The ticket's status.
    pub status: Option<String>,
    /// The customer's address.
    pub customer_email: Option<String>,
    /// The customer's name.
    pub customer_name: Option<String>,
    /// The text of the message that caused the mail.
    pub cause_text: Option<String>,
    /// Who wrote that message (display name).
    pub cause_author: Option<String>,
}

/// Counts for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Waiting or in flight.
    pub pending: i64,
    /// Delivered.
    pub sent: i64,
    /// Given up.
    pub failed: i64,
}

fn item_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxItem> {
    Ok(OutboxItem {
        id: row.get(0)?,
        template: row.get(1)?,
        recipient_email: row.get(2)?,
        recipient_name: row.get(3)?,
        language: row.get(4)?,
        automatic: row.get(5)?,
        message_id: row.get(6)?,
        in_reply_to: row.get(7)?,
        attempts: row.get(8)?,
        created_at: row.get(9)?,
        tracking_id: row.get(10)?,
        subject: row.get(11)?,
        status: row.get(12)?,
        customer_email: row.get(13)?,
        customer_name: row.get(14)?,
        cause_text: row.get(15)?,
        cause_author: row.get(16)?,
    })
}

/// One mail to queue, written inside the transaction of the change that causes it.
#[derive(Debug, Clone)]
pub(super) struct NewOutboxRow<'a> {
    /// The ticket it is about (none for replies about mail that made no ticket).
    pub ticket_id: Option<i64>,
    /// The thread entry whose text it carries.
    pub cause_message: Option<i64>,
    /// Which mail.
    pub template: Template,
    /// Recipient address.
    pub recipient_email: &'a str,
    /// Recipient display name.
    pub recipient_name: &'a str,
    /// `en` or `uk`.
    pub language: &'a str,
    /// Our Message-ID for it (one per row, UNIQUE).
    pub message_id: &'a str,
    /// The inbound Message-ID it answers, for threading ('' if none).
    pub in_reply_to: &'a str,
    /// Now (ms): queued at, and due at.
    pub now: i64,
}

/// Queues one mail; the caller's transaction makes it exist exactly when its cause does.
pub(super) fn insert_outbox(conn: &Connection, row: &NewOutboxRow<'_>) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO outbox (ticket_id, cause_message, template, recipient_email, recipient_name,
                             language, automatic, message_id, in_reply_to, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        params![
            row.ticket_id,
            row.cause_message,
            row.template.as_str(),
            row.recipient_email,
            row.recipient_name,
            row.language,
            row.template.is_automatic(),
            row.message_id,
            row.in_reply_to,
            row.now
        ],
    )?;
    Ok(())
}

impl Store {
    /// Up to `limit` rows due at `now` (pending, or left `sending` by a crash).
    pub fn due_outbox(&self, now: i64, limit: usize) -> rusqlite::Result<Vec<OutboxItem>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT o.id, o.template, o.recipient_email, o.recipient_name, o.language, o.automatic,
                    o.message_id, o.in_reply_to, o.attempts, o.created_at,
                    t.tracking_id, t.subject, t.status, t.customer_email, t.customer_name,
                    m.body, CASE WHEN m.sender_name <> '' THEN m.sender_name ELSE m.sender_email END
             FROM outbox o
             LEFT JOIN tickets t ON t.id = o.ticket_id
             LEFT JOIN messages m ON m.id = o.cause_message
             WHERE o.status IN ('pending', 'sending') AND o.next_attempt_at <= ?1
             ORDER BY o.next_attempt_at, o.id
             LIMIT ?2",
        )?;
        let rows = statement.query_map(params![now, limit as i64], item_from_row)?;
        rows.collect()
    }

    /// Claims a due row for sending until `lease_until` (ms). Returns false when another
    /// worker (the daemon, or a `deliver` process) claimed it first. A claim left by a crash
    /// expires at `lease_until`, and the row is then sent again.
    pub fn claim_outbox(&self, id: i64, now: i64, lease_until: i64) -> rusqlite::Result<bool> {
        let changed = self.conn.execute(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?3
             WHERE id = ?1 AND status IN ('pending', 'sending') AND next_attempt_at <= ?2",
            params![id, now, lease_until],
        )?;
        Ok(changed == 1)
    }

    /// Marks a row delivered.
    pub fn mark_outbox_sent(&self, id: i64, now: i64) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?2, last_error = NULL WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    /// Puts a row back for a later attempt after a transient failure.
    pub fn retry_outbox(&self, id: i64, next_attempt_at: i64, error: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE outbox SET status = 'pending', next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
            params![id, next_attempt_at, error],
        )?;
        Ok(())
    }

    /// Gives up on a row, keeping the reason.
    pub fn fail_outbox(&self, id: i64, error: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE outbox SET status = 'failed', last_error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// Counts by state.
    pub fn outbox_stats(&self) -> rusqlite::Result<OutboxStats> {
        self.conn.query_row(
            "SELECT coalesce(sum(status IN ('pending', 'sending')), 0),
                    coalesce(sum(status = 'sent'), 0),
                    coalesce(sum(status = 'failed'), 0)
             FROM outbox",
            [],
            |row| {
                Ok(OutboxStats {
                    pending: row.get(0)?,
                    sent: row.get(1)?,
                    failed: row.get(2)?,
                })
            },
        )
    }
}
