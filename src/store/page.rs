//! Read queries of the tracking page and the metrics endpoint. The page's connection is
//! read-only, so nothing here writes.
//!
//! Invariant: whatever the page can reach is restricted to one ticket, and within it to the
//! customer's and agents' messages (never notes, auto-replies or system mail).

use rusqlite::{params, OptionalExtension};

use super::queries::{ticket_from_row, TICKET_COLUMNS};
use super::Store;
use crate::model::{EmailAddress, Ticket, TrackingId};

/// A stored attachment the page may hand out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageAttachment {
    /// The file name as the mail gave it.
    pub name: String,
    /// The stored MIME type.
    pub content_type: String,
    /// The blob's content hash.
    pub sha256: String,
}

impl Store {
    /// The ticket with this tracking ID whose customer is `email`: one query on the unique
    /// tracking-ID index. A wrong ID and a wrong address both give `None`.
    pub fn ticket_by_tracking_id_and_email(
        &self,
        id: &TrackingId,
        email: &EmailAddress,
    ) -> rusqlite::Result<Option<Ticket>> {
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE tracking_id = ?1 AND customer_email = ?2"
        );
        self.conn
            .prepare_cached(&sql)?
            .query_row(params![id.as_str(), email.as_str()], ticket_from_row)
            .optional()
    }

    /// A stored attachment of a customer or agent message of ticket `id`, by content hash.
    pub fn customer_visible_attachment(
        &self,
        id: &TrackingId,
        sha256: &str,
    ) -> rusqlite::Result<Option<PageAttachment>> {
        self.conn
            .prepare_cached(
                "SELECT a.name, a.content_type, a.sha256
                 FROM attachments a
                 JOIN messages m ON m.id = a.message_id
                 JOIN tickets t ON t.id = m.ticket_id
                 WHERE t.tracking_id = ?1 AND a.sha256 = ?2 AND m.kind IN ('customer', 'agent')
                 ORDER BY a.id LIMIT 1",
            )?
            .query_row(params![id.as_str(), sha256], |row| {
                Ok(PageAttachment {
                    name: row.get(0)?,
                    content_type: row.get(1)?,
                    sha256: row.get(2)?,
                })
            })
            .optional()
    }

    /// How many tickets are in each status (statuses without tickets are left out).
    pub fn tickets_by_status(&self) -> rusqlite::Result<Vec<(String, i64)>> {
        let mut statement = self
            .conn
            .prepare("SELECT status, count(*) FROM tickets GROUP BY status ORDER BY status")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect()
    }
}
