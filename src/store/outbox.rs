//! The outbox: rows written by intake transactions, claimed, sent and marked by the worker.
//!
//! A row moves `pending → sending → sent`, or back to `pending` with a later
//! `next_attempt_at` after a transient failure, or to `failed`. Claiming sets `sending` with a
//! lease (`next_attempt_at` in the near future) before the send, atomically, so two workers
//! never send the same row; a crash between send and mark leaves only that row `sending`, and
//! it is sent again once its lease expires, or at once when the claim's recorded owner
//! process is provably dead ([`Store::release_dead_claims`]).

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::Store;
use crate::model::{EmailAddress, Template};
use crate::outbound::guard::{suppression_reason, RecipientFacts, SendPolicy};

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
    /// That message's row (for its attachments).
    pub cause_message: Option<i64>,
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
    /// Not sent by the loop-safety rules (rate limit, robots, bounces).
    pub suppressed: i64,
    /// When the oldest mail still waiting was queued, in ms since the epoch.
    pub oldest_pending_ms: Option<i64>,
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
        cause_message: row.get(17)?,
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
    /// Loop-safety rules: a mail they forbid is recorded as `suppressed` with the reason.
    pub policy: &'a SendPolicy,
    /// The subject of the mail it answers, for mails without a ticket.
    pub subject: Option<&'a str>,
}

/// Queues one mail; the caller's transaction makes it exist exactly when its cause does. A
/// mail the loop-safety rules forbid is stored as `suppressed` with the reason (and an event
/// on the ticket), never silently dropped.
pub(super) fn insert_outbox(conn: &Connection, row: &NewOutboxRow<'_>) -> rusqlite::Result<()> {
    let suppressed = match EmailAddress::parse(row.recipient_email) {
        Some(recipient) => {
            let facts = recipient_facts(conn, &recipient, row.now)?;
            suppression_reason(row.template, &recipient, row.policy, &facts, row.now)
        }
        None => Some(format!("{:?} is not a valid address", row.recipient_email)),
    };
    if let (Some(reason), Some(ticket)) = (&suppressed, row.ticket_id) {
        conn.prepare_cached(
            "INSERT INTO events (ticket_id, at, actor, kind, detail) VALUES (?1, ?2, 'system', 'suppressed', ?3)",
        )?
        .execute(params![ticket, row.now, reason])?;
    }
    conn.prepare_cached(
        "INSERT INTO outbox (ticket_id, cause_message, template, recipient_email, recipient_name,
                             language, automatic, message_id, in_reply_to, next_attempt_at, created_at,
                             status, last_error, subject)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
            row.ticket_id,
            row.cause_message,
            row.template.as_str(),
            row.recipient_email,
            row.recipient_name,
            row.language,
            row.template.is_automatic(),
            row.message_id,
            row.in_reply_to,
            row.now,
            if suppressed.is_some() { "suppressed" } else { "pending" },
            suppressed,
            row.subject
    ])?;
    Ok(())
}

/// What loop safety needs to know about a recipient, read inside the queueing transaction.
fn recipient_facts(
    conn: &Connection,
    recipient: &EmailAddress,
    now: i64,
) -> rusqlite::Result<RecipientFacts> {
    let hour_ago = now - 3_600_000;
    let automatic_last_hour: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM outbox
             WHERE automatic = 1 AND recipient_email = ?1 AND created_at > ?2 AND status <> 'suppressed'",
        )?
        .query_row(params![recipient.as_str(), hour_ago], |row| row.get(0))?;
    let bounce_suppression = conn
        .prepare_cached("SELECT reason, until_at FROM suppressions WHERE address = ?1")?
        .query_row([recipient.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(RecipientFacts {
        automatic_last_hour: u32::try_from(automatic_last_hour).unwrap_or(u32::MAX),
        bounce_suppression,
    })
}

impl Store {
    /// Up to `limit` rows due at `now` (pending, or left `sending` by a crash).
    pub fn due_outbox(&self, now: i64, limit: usize) -> rusqlite::Result<Vec<OutboxItem>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT o.id, o.template, o.recipient_email, o.recipient_name, o.language, o.automatic,
                    o.message_id, o.in_reply_to, o.attempts, o.created_at,
                    t.tracking_id, coalesce(t.subject, o.subject), t.status, t.customer_email, t.customer_name,
                    m.body, CASE WHEN m.sender_name <> '' THEN m.sender_name ELSE m.sender_email END,
                    o.cause_message
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
        self.claim_outbox_as(id, now, lease_until, None)
    }

    /// [`Store::claim_outbox`], recording the claiming process (`owner`, see
    /// `outbound::lease`) so that the claim can be released as soon as that process is dead.
    pub fn claim_outbox_as(
        &self,
        id: i64,
        now: i64,
        lease_until: i64,
        owner: Option<&str>,
    ) -> rusqlite::Result<bool> {
        let changed = self.conn.execute(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?3,
                               lease_owner = ?4
             WHERE id = ?1 AND status IN ('pending', 'sending') AND next_attempt_at <= ?2",
            params![id, now, lease_until, owner],
        )?;
        Ok(changed == 1)
    }

    /// Makes the rows claimed by owners that `is_dead` says are gone due again, in their
    /// place in the queue (due as when they were queued, so they go before newer mail); they
    /// stay `sending` until claimed anew. Returns how many. Used at the start of every worker
    /// pass, so a killed process's claims do not wait for their lease.
    pub fn release_dead_claims(
        &self,
        now: i64,
        is_dead: impl Fn(&str) -> bool,
    ) -> rusqlite::Result<usize> {
        let owners: Vec<String> = {
            let mut statement = self.conn.prepare_cached(
                "SELECT DISTINCT lease_owner FROM outbox
                 WHERE status = 'sending' AND next_attempt_at > ?1 AND lease_owner IS NOT NULL",
            )?;
            let rows = statement.query_map([now], |row| row.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut released = 0;
        for owner in owners.iter().filter(|o| is_dead(o)) {
            released += self.conn.execute(
                "UPDATE outbox SET next_attempt_at = min(created_at, ?2)
                 WHERE status = 'sending' AND lease_owner = ?1 AND next_attempt_at > ?2",
                params![owner, now],
            )?;
        }
        Ok(released)
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
                    coalesce(sum(status = 'failed'), 0),
                    coalesce(sum(status = 'suppressed'), 0),
                    min(CASE WHEN status IN ('pending', 'sending') THEN created_at END)
             FROM outbox",
            [],
            |row| {
                Ok(OutboxStats {
                    pending: row.get(0)?,
                    sent: row.get(1)?,
                    failed: row.get(2)?,
                    suppressed: row.get(3)?,
                    oldest_pending_ms: row.get(4)?,
                })
            },
        )
    }
}

/// One outbox row as operators and tests see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxSummary {
    /// Template name.
    pub template: String,
    /// Recipient address.
    pub recipient: String,
    /// `pending`, `sending`, `sent`, `failed` or `suppressed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error or the suppression reason.
    pub last_error: Option<String>,
    /// The status codes of a permanent bounce that returned this mail.
    pub bounce_status: Option<String>,
    /// Our Message-ID.
    pub message_id: String,
}

impl Store {
    /// The stored (not dropped) attachments of a message row: name, MIME type, blob hash.
    pub fn stored_attachments(
        &self,
        message_row: i64,
    ) -> rusqlite::Result<Vec<(String, String, String)>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT name, content_type, sha256 FROM attachments
             WHERE message_id = ?1 AND sha256 IS NOT NULL ORDER BY id",
        )?;
        let rows = statement.query_map([message_row], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
        rows.collect()
    }

    /// Every outbox row, oldest first (for `tickets show`, reports and tests).
    pub fn outbox_summary(&self) -> rusqlite::Result<Vec<OutboxSummary>> {
        let mut statement = self.conn.prepare(
            "SELECT template, recipient_email, status, attempts, last_error, bounce_status, message_id
             FROM outbox ORDER BY id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(OutboxSummary {
                template: row.get(0)?,
                recipient: row.get(1)?,
                status: row.get(2)?,
                attempts: row.get(3)?,
                last_error: row.get(4)?,
                bounce_status: row.get(5)?,
                message_id: row.get(6)?,
            })
        })?;
        rows.collect()
    }
}
