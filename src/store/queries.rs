//! Read queries for operators and the page: ticket lists, one ticket with its thread, and the
//! quarantine list.

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::Store;
use crate::model::{AttachmentInfo, MessageKind, ThreadMessage, Ticket, TicketStatus, TrackingId};

/// Which tickets `tickets list` shows.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only this status.
    pub status: Option<TicketStatus>,
    /// Only this customer (case-insensitive).
    pub customer: Option<String>,
    /// Only tickets updated at or after this time (ms).
    pub updated_since: Option<i64>,
}

/// A mail that could not be handled, kept raw for an operator.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantinedMail {
    /// The quarantine entry's ID (for `quarantine retry`).
    pub id: i64,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Where it came from.
    pub source: String,
    /// The sender, as far as it could be read.
    pub sender: String,
    /// The subject, as far as it could be read.
    pub subject: String,
    /// Its size in bytes.
    pub size: i64,
    /// Why it was quarantined.
    pub reason: String,
    /// The raw mail's blob hash.
    pub raw_sha256: Option<String>,
}

/// Milliseconds since the epoch as a UTC time (the epoch itself if out of range).
pub fn time_from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(super) const TICKET_COLUMNS: &str = "tracking_id, id, subject, customer_email, customer_name, status, language,
     created_at, updated_at, last_replier, last_agent_at, last_customer_at, closed_by, previous_tracking_id";

pub(super) fn ticket_from_row(row: &Row<'_>) -> rusqlite::Result<Ticket> {
    let bad = |what: &str| {
        rusqlite::Error::InvalidColumnType(0, what.to_string(), rusqlite::types::Type::Text)
    };
    let tracking: String = row.get(0)?;
    let status: String = row.get(5)?;
    Ok(Ticket {
        tracking_id: TrackingId::parse(&tracking).ok_or_else(|| bad("tracking_id"))?,
        number: row.get(1)?,
        subject: row.get(2)?,
        customer_email: row.get(3)?,
        customer_name: row.get(4)?,
        status: TicketStatus::parse(&status).ok_or_else(|| bad("status"))?,
        language: row.get(6)?,
        created_at: time_from_ms(row.get(7)?),
        updated_at: time_from_ms(row.get(8)?),
        last_replier: row.get(9)?,
        last_agent_at: row.get::<_, Option<i64>>(10)?.map(time_from_ms),
        last_customer_at: row.get::<_, Option<i64>>(11)?.map(time_from_ms),
        closed_by: row.get(12)?,
        previous_tracking_id: row.get(13)?,
    })
}

const QUARANTINE_SELECT: &str =
    "SELECT id, received_at, source, sender, subject, size, reason, raw_sha256
     FROM inbound WHERE outcome = 'quarantined'";

fn quarantined_from_row(row: &Row<'_>) -> rusqlite::Result<QuarantinedMail> {
    Ok(QuarantinedMail {
        id: row.get(0)?,
        received_at: time_from_ms(row.get(1)?),
        source: row.get(2)?,
        sender: row.get(3)?,
        subject: row.get(4)?,
        size: row.get(5)?,
        reason: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
        raw_sha256: row.get(7)?,
    })
}

impl Store {
    /// Tickets matching `filter`, newest first.
    pub fn list_tickets(&self, filter: &TicketFilter) -> rusqlite::Result<Vec<Ticket>> {
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM tickets
             WHERE (?1 IS NULL OR status = ?1)
               AND (?2 IS NULL OR customer_email = lower(?2))
               AND (?3 IS NULL OR updated_at >= ?3)
             ORDER BY id DESC"
        );
        let mut statement = self.conn.prepare(&sql)?;
        let rows = statement.query_map(
            params![
                filter.status.map(TicketStatus::as_str),
                filter.customer,
                filter.updated_since
            ],
            ticket_from_row,
        )?;
        rows.collect()
    }

    /// One ticket by tracking ID.
    pub fn ticket_by_tracking_id(&self, id: &TrackingId) -> rusqlite::Result<Option<Ticket>> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE tracking_id = ?1");
        self.conn
            .prepare_cached(&sql)?
            .query_row([id.as_str()], ticket_from_row)
            .optional()
    }

    /// The row of the newest thread entry of ticket `number` (any kind), if any: with the
    /// ticket row, what tells a cached page from a stale one.
    pub fn last_message_row(&self, number: i64) -> rusqlite::Result<Option<i64>> {
        self.conn
            .prepare_cached("SELECT max(id) FROM messages WHERE ticket_id = ?1")?
            .query_row([number], |row| row.get(0))
    }

    /// A ticket's thread, oldest first. `include_internal` adds notes and auto messages.
    pub fn thread(
        &self,
        id: &TrackingId,
        include_internal: bool,
    ) -> rusqlite::Result<Vec<ThreadMessage>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT m.id, m.kind, m.sender_email, m.sender_name, m.body, m.created_at
             FROM messages m JOIN tickets t ON t.id = m.ticket_id
             WHERE t.tracking_id = ?1 AND (?2 OR m.kind IN ('customer', 'agent'))
             ORDER BY m.id",
        )?;
        // All attachments of the ticket in one query, not one per message: the page of a
        // long thread stays a constant number of queries.
        let mut attachments = self.conn.prepare_cached(
            "SELECT a.message_id, a.name, a.size, a.content_type, a.sha256, a.dropped_reason
             FROM attachments a JOIN messages m ON m.id = a.message_id
             JOIN tickets t ON t.id = m.ticket_id
             WHERE t.tracking_id = ?1 AND (?2 OR m.kind IN ('customer', 'agent'))
             ORDER BY a.id",
        )?;
        let mut by_message: std::collections::HashMap<i64, Vec<AttachmentInfo>> =
            std::collections::HashMap::new();
        let rows = attachments.query_map(params![id.as_str(), include_internal], |a| {
            Ok((
                a.get::<_, i64>(0)?,
                AttachmentInfo {
                    name: a.get(1)?,
                    size: a.get(2)?,
                    content_type: a.get(3)?,
                    sha256: a.get(4)?,
                    dropped_reason: a.get(5)?,
                },
            ))
        })?;
        for row in rows {
            let (message_row, attachment) = row?;
            by_message.entry(message_row).or_default().push(attachment);
        }
        let rows = statement.query_map(params![id.as_str(), include_internal], |row| {
            let kind: String = row.get(1)?;
            Ok((
                row.get::<_, i64>(0)?,
                ThreadMessage {
                    kind: MessageKind::parse(&kind).unwrap_or(MessageKind::System),
                    from: row.get(2)?,
                    from_name: row.get(3)?,
                    text: row.get(4)?,
                    created_at: time_from_ms(row.get(5)?),
                    attachments: Vec::new(),
                },
            ))
        })?;
        let mut thread = Vec::new();
        for row in rows {
            let (message_row, mut message) = row?;
            message.attachments = by_message.remove(&message_row).unwrap_or_default();
            thread.push(message);
        }
        Ok(thread)
    }

    /// The quarantine list, oldest first.
    pub fn quarantined(&self) -> rusqlite::Result<Vec<QuarantinedMail>> {
        let sql = format!("{QUARANTINE_SELECT} ORDER BY received_at, id");
        let mut statement = self.conn.prepare(&sql)?;
        let rows = statement.query_map([], quarantined_from_row)?;
        rows.collect()
    }

    /// One quarantine entry by its ID (`quarantine retry ID`).
    pub fn quarantined_by_id(&self, id: i64) -> rusqlite::Result<Option<QuarantinedMail>> {
        let sql = format!("{QUARANTINE_SELECT} AND id = ?1");
        self.conn
            .query_row(&sql, [id], quarantined_from_row)
            .optional()
    }

    /// How many inbound mails ended with each outcome.
    pub fn inbound_tally(&self) -> rusqlite::Result<Vec<(String, i64)>> {
        let mut statement = self
            .conn
            .prepare("SELECT outcome, count(*) FROM inbound GROUP BY outcome ORDER BY outcome")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect()
    }
}
