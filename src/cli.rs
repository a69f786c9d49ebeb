//! Output of the operator commands (`tickets list/show`, `quarantine list/retry`,
//! `close-stale`): aligned text for people, JSON (`--json`) for scripts.

use std::io::Write;

use serde::Serialize;

use crate::intake::Outcome;
use crate::jobs::auto_close::SweepReport;
use crate::model::{ThreadMessage, Ticket};
use crate::store::QuarantinedMail;

/// A ticket with its thread, as `tickets show --json` prints it.
#[derive(Debug, Serialize)]
pub struct TicketWithThread<'a> {
    /// The ticket's fields.
    #[serde(flatten)]
    pub ticket: &'a Ticket,
    /// The thread, oldest first, notes and auto messages included.
    pub messages: &'a [ThreadMessage],
}

fn short_time(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%d %H:%M").to_string()
}

fn clip(text: &str, width: usize) -> String {
    let mut out: String = text.chars().take(width).collect();
    if text.chars().count() > width {
        out.pop();
        out.push('…');
    }
    out
}

/// Prints a ticket list as a table.
pub fn print_ticket_table(out: &mut impl Write, tickets: &[Ticket]) -> std::io::Result<()> {
    if tickets.is_empty() {
        return writeln!(out, "No tickets.");
    }
    writeln!(
        out,
        "{:<12}  {:>5}  {:<13}  {:<16}  {:<28}  SUBJECT",
        "ID", "NO", "STATUS", "UPDATED", "CUSTOMER"
    )?;
    for t in tickets {
        writeln!(
            out,
            "{:<12}  {:>5}  {:<13}  {:<16}  {:<28}  {}",
            t.tracking_id,
            t.number,
            t.status.as_str(),
            short_time(&t.updated_at),
            clip(&t.customer_email, 28),
            clip(&t.subject, 60)
        )?;
    }
    Ok(())
}

/// Prints one ticket and its thread.
pub fn print_ticket(
    out: &mut impl Write,
    ticket: &Ticket,
    thread: &[ThreadMessage],
) -> std::io::Result<()> {
    writeln!(out, "Ticket {} (#{})", ticket.tracking_id, ticket.number)?;
    writeln!(out, "Subject:  {}", ticket.subject)?;
    writeln!(
        out,
        "Customer: {} <{}>",
        ticket.customer_name, ticket.customer_email
    )?;
    writeln!(out, "Status:   {}", ticket.status)?;
    writeln!(out, "Created:  {}", ticket.created_at.to_rfc3339())?;
    writeln!(out, "Updated:  {}", ticket.updated_at.to_rfc3339())?;
    if let Some(previous) = &ticket.previous_tracking_id {
        writeln!(out, "Follows:  {previous}")?;
    }
    for message in thread {
        writeln!(out)?;
        let name = if message.from_name.is_empty() {
            &message.from
        } else {
            &message.from_name
        };
        writeln!(
            out,
            "--- {} · {} · {}",
            message.kind.as_str(),
            name,
            message.created_at.to_rfc3339()
        )?;
        writeln!(out, "{}", message.text)?;
        for a in &message.attachments {
            match &a.dropped_reason {
                Some(reason) => writeln!(
                    out,
                    "[attachment {} ({} bytes) dropped: {reason}]",
                    a.name, a.size
                )?,
                None => writeln!(out, "[attachment {} ({} bytes)]", a.name, a.size)?,
            }
        }
    }
    Ok(())
}

/// Prints the quarantine list.
pub fn print_quarantine(out: &mut impl Write, mails: &[QuarantinedMail]) -> std::io::Result<()> {
    if mails.is_empty() {
        return writeln!(out, "The quarantine is empty.");
    }
    for m in mails {
        writeln!(
            out,
            "{:>5}  {}  {:<8}  {:>9} B  {}  {:?}\n       reason: {}",
            m.id,
            short_time(&m.received_at),
            m.source,
            m.size,
            if m.sender.is_empty() {
                "(no sender)"
            } else {
                &m.sender
            },
            m.subject,
            m.reason
        )?;
    }
    Ok(())
}

/// Prints what an auto-close sweep closed (or, dry, would close).
pub fn print_sweep(out: &mut impl Write, report: &SweepReport) -> std::io::Result<()> {
    let (verb, ids) = if report.dry_run {
        ("Would close", &report.would_close)
    } else {
        ("Closed", &report.closed)
    };
    let as_of = report.as_of.to_rfc3339();
    if ids.is_empty() {
        return writeln!(out, "No ticket is due for auto-close as of {as_of}.");
    }
    writeln!(out, "{verb} {} ticket(s) as of {as_of}:", ids.len())?;
    for id in ids {
        writeln!(out, "  {id}")?;
    }
    Ok(())
}

/// Prints the new outcome of a retried quarantine entry.
pub fn print_retry(out: &mut impl Write, id: i64, outcome: &Outcome) -> std::io::Result<()> {
    let ticket = outcome
        .ticket
        .as_ref()
        .map(|t| format!(" (ticket {t})"))
        .unwrap_or_default();
    let reason = outcome
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    writeln!(
        out,
        "Quarantine entry {id}: {}{ticket}{reason}",
        outcome.outcome
    )
}
