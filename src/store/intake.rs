//! The intake side of the store: the lookups routing needs and the one transaction that
//! applies a routing decision (ticket rows, thread entry, attachments, events, outbox rows and
//! the inbound dedupe record, all or nothing).

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::notify::{answered_message_id, record_permanent_bounce};
use super::outbox::{insert_outbox, NewOutboxRow};
use super::records::{Applied, ApplyError, IntakeRecord, Prepared};
use super::Store;
use crate::lifecycle::ClosedMark;
use crate::model::{EmailAddress, MessageKind, TicketStatus, TrackingId};
use crate::outbound::guard::SendPolicy;
use crate::route::decide::{Decision, Notice, TicketRef};

impl Store {
    /// True when a mail with this dedupe key was handled before.
    pub fn is_seen(&self, dedupe_key: &str) -> rusqlite::Result<bool> {
        self.is_seen_except(dedupe_key, None)
    }

    /// [`Store::is_seen`], not counting the inbound row `except` (a quarantined mail being
    /// retried).
    pub fn is_seen_except(&self, dedupe_key: &str, except: Option<i64>) -> rusqlite::Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM inbound WHERE dedupe_key = ?1 AND id IS NOT ?2",
                params![dedupe_key, except],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
    }

    /// The ticket with this tracking ID, as routing sees it.
    pub fn ticket_ref_by_tracking_id(
        &self,
        id: &TrackingId,
    ) -> rusqlite::Result<Option<TicketRef>> {
        self.conn
            .query_row(
                "SELECT id, tracking_id, customer_email, customer_name, subject, status
                 FROM tickets WHERE tracking_id = ?1",
                [id.as_str()],
                ticket_ref_from_row,
            )
            .optional()
    }

    /// The ticket that any of `message_ids` (tried in order) belongs to: a mail we stored or
    /// sent for it.
    pub fn ticket_ref_by_message_ids(
        &self,
        message_ids: &[String],
    ) -> rusqlite::Result<Option<TicketRef>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT t.id, t.tracking_id, t.customer_email, t.customer_name, t.subject, t.status
             FROM tickets t WHERE t.id = (
                 SELECT ticket_id FROM messages WHERE message_id = ?1
                 UNION ALL
                 SELECT ticket_id FROM outbox WHERE message_id = ?1 AND ticket_id IS NOT NULL
                 LIMIT 1)",
        )?;
        for id in message_ids {
            if let Some(found) = statement.query_row([id], ticket_ref_from_row).optional()? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Applies one routing decision in one transaction.
    pub fn apply_decision(
        &mut self,
        decision: &Decision,
        prepared: &Prepared,
    ) -> Result<Applied, ApplyError> {
        if matches!(decision, Decision::Duplicate) {
            return Ok(Applied {
                outcome: "duplicate",
                ticket: None,
                queued: 0,
            });
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied = apply_in(&tx, decision, prepared, &self.send_policy)?;
        tx.commit()?;
        Ok(applied)
    }
}

fn ticket_ref_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TicketRef> {
    let tracking: String = row.get(1)?;
    let email: String = row.get(2)?;
    let status: String = row.get(5)?;
    let bad = |what: &str| {
        rusqlite::Error::InvalidColumnType(0, what.to_string(), rusqlite::types::Type::Text)
    };
    Ok(TicketRef {
        id: row.get(0)?,
        tracking_id: TrackingId::parse(&tracking).ok_or_else(|| bad("tracking_id"))?,
        customer_email: EmailAddress::parse(&email).ok_or_else(|| bad("customer_email"))?,
        customer_name: row.get(3)?,
        subject: row.get(4)?,
        status: TicketStatus::parse(&status).ok_or_else(|| bad("status"))?,
    })
}

fn apply_in(
    tx: &Transaction<'_>,
    decision: &Decision,
    p: &Prepared,
    policy: &SendPolicy,
) -> Result<Applied, ApplyError> {
    let now = p.now;
    let (outcome, ticket_row, reason): (&'static str, Option<i64>, Option<String>) = match decision
    {
        Decision::Duplicate => {
            return Ok(Applied {
                outcome: "duplicate",
                ticket: None,
                queued: 0,
            })
        }
        Decision::Ignore { reason } => ("ignored", None, Some(reason.clone())),
        Decision::Quarantine { reason, .. } => ("quarantined", None, Some(reason.clone())),
        Decision::AttachAuto {
            ticket,
            reason,
            bounce,
        } => {
            let detail = match bounce {
                Some(b) => format!("{}; status {}", reason.describe(), b.status_codes.join(",")),
                None => reason.describe().to_string(),
            };
            ("attached_auto", Some(ticket.id), Some(detail))
        }
        Decision::NewTicket { .. } => ("ticket_opened", None, None),
        Decision::Append { ticket, .. } => ("appended", Some(ticket.id), None),
    };
    if let Some(old) = p.replaces_inbound {
        let deleted = tx.execute(
            "DELETE FROM inbound WHERE id = ?1 AND outcome = 'quarantined'",
            [old],
        )?;
        // Another retry of the same entry won: this one changes nothing.
        if deleted != 1 {
            return Err(ApplyError::Duplicate);
        }
    }
    let inbound_id = insert_inbound(tx, &p.record, outcome, reason.as_deref())?;

    let mut ticket_id = ticket_row;
    let mut tracking = None;
    let mut message_row = None;
    let mut queued = 0;
    match decision {
        Decision::Duplicate | Decision::Ignore { .. } => {}
        Decision::Quarantine { notify, .. } => {
            if let Some(notice) = notify {
                queue(tx, None, None, notice, &p.language, p, policy, 0, now)?;
                queued = 1;
            }
        }
        Decision::AttachAuto {
            ticket,
            reason,
            bounce,
        } => {
            tracking = Some(ticket.tracking_id.clone());
            let row = insert_message(
                tx,
                ticket.id,
                MessageKind::Auto,
                &p.message,
                &p.message.full_text,
                now,
            )?;
            message_row = Some(row);
            insert_event(
                tx,
                ticket.id,
                now,
                "system",
                "auto",
                None,
                None,
                reason.describe(),
            )?;
            if let Some(bounce) = bounce.as_ref().filter(|b| b.is_permanent()) {
                record_permanent_bounce(tx, ticket.id, bounce, now)?;
            }
        }
        Decision::NewTicket {
            customer,
            subject,
            body,
            previous,
            notices,
        } => {
            let id = insert_ticket(
                tx,
                p,
                customer.email.as_str(),
                &customer.name,
                subject,
                previous.as_ref(),
            )?;
            ticket_id = Some(id);
            tracking = Some(p.new_tracking_id.clone());
            let row = insert_message(tx, id, MessageKind::Customer, &p.message, body, now)?;
            message_row = Some(row);
            let detail = previous
                .as_ref()
                .map(|t| format!("follows closed ticket {t}"))
                .unwrap_or_default();
            insert_event(
                tx,
                id,
                now,
                "customer",
                "opened",
                None,
                Some("new"),
                &detail,
            )?;
            for (index, notice) in notices.iter().enumerate() {
                queue(
                    tx,
                    Some(id),
                    Some(row),
                    notice,
                    &p.language,
                    p,
                    policy,
                    index,
                    now,
                )?;
            }
            queued = notices.len();
        }
        Decision::Append {
            ticket,
            kind,
            actor,
            author,
            command,
            new_status,
            body,
            notices,
        } => {
            tracking = Some(ticket.tracking_id.clone());
            let row = insert_message(tx, ticket.id, *kind, &p.message, body, now)?;
            message_row = Some(row);
            update_ticket_after_message(tx, ticket, *kind, *actor, author, *new_status, now)?;
            let detail = command
                .map(|c| format!("command {c:?}").to_lowercase())
                .unwrap_or_default();
            let (from, to) = (ticket.status.as_str(), new_status.as_str());
            insert_event(
                tx,
                ticket.id,
                now,
                actor.as_str(),
                kind.as_str(),
                Some(from),
                Some(to),
                &detail,
            )?;
            let language: String = tx.query_row(
                "SELECT language FROM tickets WHERE id = ?1",
                [ticket.id],
                |r| r.get(0),
            )?;
            for (index, notice) in notices.iter().enumerate() {
                queue(
                    tx,
                    Some(ticket.id),
                    Some(row),
                    notice,
                    &language,
                    p,
                    policy,
                    index,
                    now,
                )?;
            }
            queued = notices.len();
        }
    }
    tx.execute(
        "UPDATE inbound SET ticket_id = ?2, message_row = ?3 WHERE id = ?1",
        params![inbound_id, ticket_id, message_row],
    )?;
    Ok(Applied {
        outcome,
        ticket: tracking,
        queued,
    })
}

fn insert_inbound(
    tx: &Transaction<'_>,
    r: &IntakeRecord,
    outcome: &str,
    reason: Option<&str>,
) -> Result<i64, ApplyError> {
    let result = tx.execute(
        "INSERT INTO inbound (dedupe_key, outcome, reason, sender, subject, size, raw_sha256, source, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![r.dedupe_key, outcome, reason, r.sender, r.subject, r.size as i64, r.raw_sha256, r.source, r.received_at],
    );
    match result {
        Ok(_) => Ok(tx.last_insert_rowid()),
        Err(e) if is_unique_violation(&e) => Err(ApplyError::Duplicate),
        Err(e) => Err(e.into()),
    }
}

fn insert_ticket(
    tx: &Transaction<'_>,
    p: &Prepared,
    email: &str,
    name: &str,
    subject: &str,
    previous: Option<&TrackingId>,
) -> Result<i64, ApplyError> {
    let result = tx.execute(
        "INSERT INTO tickets (tracking_id, subject, customer_email, customer_name, language, status,
                              created_at, updated_at, last_customer_at, last_replier, previous_tracking_id)
         VALUES (?1, ?2, ?3, ?4, ?5, 'new', ?6, ?6, ?6, 'customer', ?7)",
        params![
            p.new_tracking_id.as_str(),
            subject,
            email,
            name,
            p.language,
            p.now,
            previous.map(TrackingId::as_str)
        ],
    );
    match result {
        Ok(_) => Ok(tx.last_insert_rowid()),
        Err(e) if is_unique_violation(&e) => Err(ApplyError::TrackingIdTaken),
        Err(e) => Err(e.into()),
    }
}

fn insert_message(
    tx: &Transaction<'_>,
    ticket_id: i64,
    kind: MessageKind,
    m: &super::NewMessage,
    body: &str,
    now: i64,
) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO messages (ticket_id, kind, direction, sender_email, sender_name, subject, body,
                               full_text, message_id, in_reply_to, refs, raw_sha256, created_at)
         VALUES (?1, ?2, 'in', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            ticket_id,
            kind.as_str(),
            m.sender_email,
            m.sender_name,
            m.subject,
            body,
            m.full_text,
            m.message_id,
            m.in_reply_to.join(" "),
            m.references.join(" "),
            m.raw_sha256,
            now
        ],
    )?;
    let row = tx.last_insert_rowid();
    let mut insert = tx.prepare_cached(
        "INSERT INTO attachments (message_id, name, content_type, size, sha256, dropped_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for a in &m.attachments {
        insert.execute(params![
            row,
            a.name,
            a.content_type,
            a.size as i64,
            a.sha256,
            a.dropped_reason
        ])?;
    }
    Ok(row)
}

fn update_ticket_after_message(
    tx: &Transaction<'_>,
    ticket: &TicketRef,
    kind: MessageKind,
    actor: crate::lifecycle::Actor,
    author: &crate::model::Mailbox,
    new_status: TicketStatus,
    now: i64,
) -> rusqlite::Result<()> {
    let replier = if author.name.trim().is_empty() {
        author.email.to_string()
    } else {
        author.name.clone()
    };
    let (closing, reopening, closed_by) =
        match crate::lifecycle::closed_mark(ticket.status, new_status, actor) {
            ClosedMark::Set(by) => (true, false, Some(by.as_str())),
            ClosedMark::Clear => (false, true, None),
            ClosedMark::Keep => (false, false, None),
        };
    tx.execute(
        "UPDATE tickets SET
             status = ?2,
             updated_at = ?3,
             last_customer_at = CASE WHEN ?4 = 'customer' THEN ?3 ELSE last_customer_at END,
             last_agent_at = CASE WHEN ?4 = 'agent' THEN ?3 ELSE last_agent_at END,
             last_replier = CASE WHEN ?4 = 'customer' THEN 'customer'
                                 WHEN ?4 = 'agent' THEN ?5 ELSE last_replier END,
             closed_at = CASE WHEN ?6 THEN ?3 WHEN ?7 THEN NULL ELSE closed_at END,
             closed_by = CASE WHEN ?6 THEN ?8 WHEN ?7 THEN NULL ELSE closed_by END
         WHERE id = ?1",
        params![
            ticket.id,
            new_status.as_str(),
            now,
            kind.as_str(),
            replier,
            closing,
            reopening,
            closed_by
        ],
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn insert_event(
    tx: &Transaction<'_>,
    ticket_id: i64,
    at: i64,
    actor: &str,
    kind: &str,
    from: Option<&str>,
    to: Option<&str>,
    detail: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (ticket_id, at, actor, kind, from_status, to_status, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![ticket_id, at, actor, kind, from, to, detail])?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn queue(
    tx: &Transaction<'_>,
    ticket_id: Option<i64>,
    cause: Option<i64>,
    notice: &Notice,
    language: &str,
    p: &Prepared,
    policy: &SendPolicy,
    index: usize,
    now: i64,
) -> Result<(), ApplyError> {
    let message_id = p.outgoing_message_ids.get(index).ok_or_else(|| {
        ApplyError::Database(rusqlite::Error::InvalidParameterName(
            "missing outbound Message-ID".into(),
        ))
    })?;
    let in_reply_to = answered_message_id(tx, ticket_id, notice, p)?;
    insert_outbox(
        tx,
        &NewOutboxRow {
            ticket_id,
            cause_message: cause,
            template: notice.template,
            recipient_email: notice.to.email.as_str(),
            recipient_name: &notice.to.name,
            language,
            message_id,
            in_reply_to: &in_reply_to,
            now,
            policy,
            subject: ticket_id.is_none().then_some(p.record.subject.as_str()),
        },
    )?;
    Ok(())
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}
