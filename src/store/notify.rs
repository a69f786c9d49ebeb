//! Intake's side effects on outgoing mail: which mail a notification answers (threading),
//! and what a permanent bounce does (mark the returned mail, pause the address).

use rusqlite::{params, OptionalExtension, Transaction};

use super::intake::insert_event;
use super::records::Prepared;
use crate::model::BounceInfo;
use crate::outbound::guard::BOUNCE_SUPPRESSION_MS;
use crate::route::decide::Notice;

/// The Message-ID a queued mail answers, so the recipient's client threads it: for the
/// customer, their own latest mail in the ticket (never an agent's, which they never saw);
/// for agents, the inbound mail that caused the notification.
pub(super) fn answered_message_id(
    tx: &Transaction<'_>,
    ticket_id: Option<i64>,
    notice: &Notice,
    p: &Prepared,
) -> rusqlite::Result<String> {
    let inbound = p.message.message_id.clone().unwrap_or_default();
    let Some(ticket) = ticket_id else {
        return Ok(inbound);
    };
    let to_customer: bool = tx.query_row(
        "SELECT customer_email = ?2 FROM tickets WHERE id = ?1",
        params![ticket, notice.to.email.as_str()],
        |row| row.get(0),
    )?;
    if !to_customer {
        return Ok(inbound);
    }
    Ok(customer_latest_message_id(tx, ticket)?.unwrap_or(inbound))
}

/// The Message-ID of the customer's latest mail in a ticket: what mail to the customer
/// answers, so their client threads it.
pub(super) fn customer_latest_message_id(
    tx: &Transaction<'_>,
    ticket_id: i64,
) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached(
        "SELECT message_id FROM messages
         WHERE ticket_id = ?1 AND kind = 'customer' AND message_id IS NOT NULL
         ORDER BY id DESC LIMIT 1",
    )?
    .query_row([ticket_id], |row| row.get(0))
    .optional()
}

/// A 5.x.x bounce: mark the outbound mails it returns, and pause automatic mail to the failed
/// addresses (the DSN's recipients, else the recipients of the returned mails) for 60 days.
pub(super) fn record_permanent_bounce(
    tx: &Transaction<'_>,
    ticket_id: i64,
    bounce: &BounceInfo,
    now: i64,
) -> rusqlite::Result<()> {
    let status = bounce.status_codes.join(",");
    let mut addresses: Vec<String> = bounce.recipients.iter().map(|r| r.to_string()).collect();
    for id in &bounce.original_message_ids {
        let changed = tx.execute(
            "UPDATE outbox SET bounced_at = ?2, bounce_status = ?3 WHERE message_id = ?1",
            params![id, now, status],
        )?;
        if changed > 0 && bounce.recipients.is_empty() {
            let to: String = tx.query_row(
                "SELECT recipient_email FROM outbox WHERE message_id = ?1",
                [id],
                |r| r.get(0),
            )?;
            addresses.push(to);
        }
    }
    for address in &addresses {
        tx.execute(
            "INSERT INTO suppressions (address, reason, until_at, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, until_at = excluded.until_at",
            params![address, format!("bounce {status}"), now + BOUNCE_SUPPRESSION_MS, now],
        )?;
    }
    let detail = format!("permanent bounce {status} for {}", addresses.join(", "));
    insert_event(tx, ticket_id, now, "system", "bounce", None, None, &detail)
}
